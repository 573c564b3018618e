"""Metrics as pure functions over torch tensors (numpy arrays accepted).

No sklearn call at run time: they run on any device and in the training loop. Each module's
docstring gives the formulas; tests/metrics checks them against sklearn.metrics, BLEU against
sacreBLEU, COCO mAP against pycocotools, perplexity against torch's cross_entropy.
"""

from nnrecipe.metrics.bleu import bleu, sentence_bleu, tokenize_13a
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
from nnrecipe.metrics.detection import box_convert, box_iou, coco_map, nms
from nnrecipe.metrics.regression import mae, mse, r2_score, regression_metrics, rmse
from nnrecipe.metrics.sequence import (
    exact_match,
    perplexity,
    perplexity_from_nll,
    token_accuracy,
)

__all__ = [
    "accuracy", "average_precision", "bleu", "box_convert", "box_iou", "classification_metrics",
    "coco_map", "confusion_matrix",
    "exact_match", "expected_calibration_error", "f1_threshold_curve", "mae",
    "max_calibration_error", "mse", "nll", "nms", "normalize_confusion", "per_class_table",
    "perplexity", "perplexity_from_nll", "precision_recall_curve", "precision_recall_f1",
    "r2_score", "regression_metrics", "reliability_bins", "rmse", "roc_auc", "roc_curve",
    "sentence_bleu", "token_accuracy", "tokenize_13a", "top_k_accuracy",
]
