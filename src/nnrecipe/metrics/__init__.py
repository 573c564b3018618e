"""Metrics as pure functions over torch tensors (numpy arrays accepted).

No sklearn call at run time: they run on any device and in the training loop. Each module's
docstring gives the formulas; tests/metrics checks them against sklearn.metrics.
"""

from nnrecipe.metrics.calibration import (
    expected_calibration_error,
    max_calibration_error,
    reliability_bins,
)
from nnrecipe.metrics.classification import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    nll,
    normalize_confusion,
    per_class_table,
    precision_recall_f1,
    top_k_accuracy,
)
from nnrecipe.metrics.curves import (
    average_precision,
    f1_threshold_curve,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)
from nnrecipe.metrics.regression import mae, mse, r2_score, regression_metrics, rmse

__all__ = [
    "accuracy", "average_precision", "classification_metrics", "confusion_matrix",
    "expected_calibration_error", "f1_threshold_curve", "mae", "max_calibration_error", "mse",
    "nll", "normalize_confusion", "per_class_table", "precision_recall_curve",
    "precision_recall_f1", "r2_score", "regression_metrics", "reliability_bins", "rmse",
    "roc_auc", "roc_curve", "top_k_accuracy",
]
