"""nnrecipe: train neural networks the way the best practitioners do, and show the work.

    import nnrecipe
    run = nnrecipe.fit("digits", overrides=["optimizer.lr=2e-3"])
    run.metrics["test"]["accuracy"], run.predict(X), run.predict_proba(X)
    run = nnrecipe.load(run.dir)
"""

from nnrecipe.attack import attack
from nnrecipe.bowl import bowl  # the function shadows the module, like compress
from nnrecipe.compress import compress  # shadows the module name, like report below
from nnrecipe.config import Config, resolve_config
from nnrecipe.curvature import curvature
from nnrecipe.doctor import doctor
from nnrecipe.embed import embed
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.inference import evaluate, predict
from nnrecipe.driver import fit, resume
from nnrecipe.onnx_export import export_onnx
from nnrecipe.report.html import report as make_report
from nnrecipe.run import Run
from nnrecipe.tasks import load
from nnrecipe.word_vectors import analogy, evaluate_analogies, load_vectors, similar

__version__ = "0.1.0"

__all__ = ["Config", "Run", "TrainingDiverged", "UserError", "attack", "doctor", "evaluate", "fit", "load", "predict",
           "make_report", "resolve_config", "__version__", "export_onnx",
           "analogy", "evaluate_analogies", "load_vectors", "similar", "compress", "resume",
           "curvature", "bowl", "embed"]
