"""Held-out evaluation shared by the tabular/image and the sequence pipelines: temperature scaling
on the validation split (`nnrecipe.post.temperature`) and the classification metrics of a split
with the fitted temperature applied."""

from __future__ import annotations

from nnrecipe.config import Config
from nnrecipe.metrics import classification_metrics, expected_calibration_error, nll
from nnrecipe.post.temperature import T_MAX, T_MIN, apply_temperature, temperature_fit
from nnrecipe.training.loop import predict_logits


def classification_split(model, X, y, class_names: list[str], temperature: float, n_bins: int) -> dict:
    logits = predict_logits(model, X).cpu().double()
    return classification_metrics(apply_temperature(logits, temperature), y.cpu(), class_names=class_names,
                                  n_bins=n_bins)


def calibrate(model, X_val, y_val, cfg: Config) -> dict:
    """Fit T on the validation logits; NLL and ECE before and after."""
    logits = predict_logits(model, X_val).cpu().double()
    y = y_val.cpu()
    probs_before = apply_temperature(logits, 1.0)
    fitted = temperature_fit(logits, y) if cfg.calibration.temperature else {"temperature": 1.0, "degenerate": False}
    t = fitted["temperature"]
    probs_after = apply_temperature(logits, t)
    bins = cfg.calibration.ece_bins
    return {"temperature": t, "nll_before": nll(probs_before, y), "nll_after": nll(probs_after, y),
            "ece_before": expected_calibration_error(probs_before, y, bins),
            "ece_after": expected_calibration_error(probs_after, y, bins),
            "note": _NOTES.get(fitted.get("reason"))}


_NOTES = {"separated": "validation set perfectly separated: NLL has no minimum in T, kept T = 1",
          "boundary": f"the NLL optimum lies outside T in [{T_MIN}, {T_MAX}], kept T = 1"}
