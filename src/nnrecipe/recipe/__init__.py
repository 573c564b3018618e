"""The practitioner's tuning recipe as library functions (the `nnrecipe doctor` steps) and the
health monitor that runs during every fit."""

from nnrecipe.recipe.activations import activation_stats, summarize_activations
from nnrecipe.recipe.diagnosis import diagnose_history, read_history_csv
from nnrecipe.recipe.health import HealthMonitor, write_health_csv
from nnrecipe.recipe.initial_loss import initial_loss_check
from nnrecipe.recipe.lr_finder import lr_range_test, plot_lr_finder
from nnrecipe.recipe.overfit import overfit_small
from nnrecipe.recipe.search import coarse_search, write_best_yaml

__all__ = ["HealthMonitor", "activation_stats", "coarse_search", "diagnose_history", "initial_loss_check",
           "lr_range_test", "overfit_small", "plot_lr_finder", "read_history_csv", "summarize_activations",
           "write_best_yaml", "write_health_csv"]
