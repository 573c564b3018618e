"""The practitioner's tuning recipe as library functions (the `nnrecipe doctor` steps) and the
health monitor that runs during every fit.

Each check returns a JSON-serializable dict: `initial_loss_check` (loss at init vs ln C / E[y²]),
`activation_stats` + `summarize_activations` (collapse, saturation, explosion, dead units at init),
`overfit_small` (memorize a few batches), `lr_range_test` + `plot_lr_finder` (Smith 2017),
`diagnose_history` + `read_history_csv` (under/overfitting from the learning curves).
"""

from nnrecipe.recipe.activations import activation_stats, summarize_activations
from nnrecipe.recipe.diagnosis import diagnose_history, read_history_csv
from nnrecipe.recipe.health import HealthMonitor, write_health_csv
from nnrecipe.recipe.initial_loss import initial_loss_check
from nnrecipe.recipe.lr_finder import lr_range_test, plot_lr_finder, suggest_lr
from nnrecipe.recipe.overfit import overfit_small
from nnrecipe.recipe.search import coarse_search, write_best_yaml

__all__ = ["HealthMonitor", "activation_stats", "coarse_search", "diagnose_history", "initial_loss_check",
           "lr_range_test", "overfit_small", "plot_lr_finder", "read_history_csv", "suggest_lr",
           "summarize_activations", "write_best_yaml", "write_health_csv"]
