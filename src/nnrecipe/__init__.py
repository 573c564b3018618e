"""nnrecipe: train neural networks the way the best practitioners do, and show the work.

    import nnrecipe
    run = nnrecipe.fit("digits", overrides=["optimizer.lr=2e-3"])
    run.metrics["test"]["accuracy"], run.predict(X), run.predict_proba(X)
    run = nnrecipe.load(run.dir)
"""

from nnrecipe.config import Config, resolve_config
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.inference import evaluate, predict
from nnrecipe.pipeline import fit
from nnrecipe.run import Run, load

__version__ = "0.1.0"

__all__ = ["Config", "Run", "TrainingDiverged", "UserError", "evaluate", "fit", "load", "predict",
           "resolve_config", "__version__"]
