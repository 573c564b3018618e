"""Held-out evaluation shared by the tabular/image and the sequence pipelines: temperature scaling
on the validation split (`nnrecipe.post.temperature`), the classification metrics of a split
with the fitted temperature applied, and COCO detection metrics of result files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from nnrecipe.config import Config
from nnrecipe.data.coco import load_coco
from nnrecipe.metrics import (classification_metrics, coco_map, expected_calibration_error,
                              max_calibration_error, nll, reliability_bins)
from nnrecipe.post.temperature import T_MAX, T_MIN, apply_temperature, temperature_fit
from nnrecipe.training.loop import predict_logits


def classification_split(model, X, y, class_names: list[str], temperature: float, n_bins: int) -> dict:
    logits = predict_logits(model, X).cpu().double()
    return classification_metrics(apply_temperature(logits, temperature), y.cpu(), class_names=class_names,
                                  n_bins=n_bins)


def predictions_csv(y_true, outputs, class_names: list[str] | None) -> str:
    """``predictions.csv`` of a split: ``y_true,prob_<class>…`` (classification: class indices and
    calibrated probabilities) or ``y_true,prediction`` (regression, original units). The report's
    PR/ROC curves and residual plot are drawn from it."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if class_names is not None:
        writer.writerow(["y_true"] + [f"prob_{c}" for c in class_names])
        for t, row in zip(y_true.tolist(), outputs.tolist()):
            writer.writerow([int(t)] + [f"{p:.6g}" for p in row])
    else:
        writer.writerow(["y_true", "prediction"])
        for t, p in zip(y_true.tolist(), outputs.tolist()):
            writer.writerow([f"{t:.8g}", f"{p:.8g}"])
    return buf.getvalue()


def calibrate(model, X_val, y_val, cfg: Config) -> dict:
    """Fit T on the validation logits; NLL, ECE, MCE and reliability bins before and after."""
    logits = predict_logits(model, X_val).cpu().double()
    return calibration_report(logits, y_val.cpu(), fit=cfg.calibration.temperature, n_bins=cfg.calibration.ece_bins)


def calibration_report(logits, y, *, fit: bool = True, n_bins: int = 15) -> dict:
    fitted = temperature_fit(logits, y) if fit else {"temperature": 1.0, "degenerate": False}
    t = fitted["temperature"]
    before, after = apply_temperature(logits, 1.0), apply_temperature(logits, t)
    report = {"temperature": t, "note": _NOTES.get(fitted.get("reason"))}
    for name, probs in (("before", before), ("after", after)):
        report[f"nll_{name}"] = nll(probs, y)
        report[f"ece_{name}"] = expected_calibration_error(probs, y, n_bins)
        report[f"mce_{name}"] = max_calibration_error(probs, y, n_bins)
        report[f"reliability_{name}"] = reliability_bins(probs, y, n_bins)
    return report


_NOTES = {"separated": "validation set perfectly separated: NLL has no minimum in T, kept T = 1",
          "boundary": f"the NLL optimum lies outside T in [{T_MIN}, {T_MAX}], kept T = 1"}


def evaluate_detection(gt_path, pred_path, *, out=None) -> dict:
    """COCO metrics of a results file against ground truth (`nnrecipe.metrics.coco_map`); JSON keys
    map, map_50, map_75, map_small, map_medium, map_large, map_per_class ({category_id: AP})."""
    gt, detections = load_coco(gt_path, pred_path)
    result = coco_map(gt, detections)
    result["map_per_class"] = {str(k): v for k, v in result["map_per_class"].items()}
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    return result
