"""A tabular or image run on new rows: `predict_rows` (CSV text of classes/probabilities or values) and
`evaluate_rows` (the `test` block's metrics), reading `source` with the run's own feature columns or image size."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch

from nnrecipe.data import encode_labels, load_table
from nnrecipe.errors import UserError
from nnrecipe.metrics import classification_metrics, regression_metrics
from nnrecipe.run import Run


def read_images(run: Run, source: str, *, labelled: bool):
    """Load images resized/converted to the run's (C, H, W); returns (X flat, y, file names)."""
    c, h, w = run.image_shape
    table = load_table(source, require_target=labelled, image_size=(h, w), channels=c if c in (1, 3) else None,
                       skip_bad_images=bool(run.config.get("data", {}).get("skip_bad_images", False)))
    if table.image_shape is None:
        raise UserError(f"this model takes {c}×{h}×{w} images, but '{source}' holds vectors", source,
                        "pass a folder of images or an .npz with X of shape N×C×H×W")
    if tuple(table.image_shape) != (c, h, w):
        raise UserError(f"images have shape {'×'.join(map(str, table.image_shape))}, the model takes {c}×{h}×{w}",
                        source, "pass images with the training size and channels")
    return table.X, table.y, table.row_names


def read_features(run: Run, source: str, *, labelled: bool):
    """Load `source` and select the run's feature columns by name, in training order."""
    if run.image_shape is not None:
        X, y, _ = read_images(run, source, labelled=labelled)
        return X, y
    names = run.feature_names
    target = run.info.get("target_name")
    is_csv = source.lower().endswith(".csv")
    if labelled:
        table = load_table(source, target=target if is_csv else None)
    else:
        named = target if is_csv and _csv_has_column(source, target) else None
        table = load_table(source, target=named, require_target=False)
    columns = list(table.feature_names)
    if columns == names:
        return table.X, table.y
    missing = [n for n in names if n not in columns]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"columns missing for this model: {shown}", source,
                        f"provide the {len(names)} training feature columns")
    order = [columns.index(n) for n in names]
    return table.X[:, order], table.y


def _csv_has_column(source: str, column: str | None) -> bool:
    if not column:
        return False
    try:
        with open(source, newline="") as fh:
            header = next(csv.reader(fh), [])
    except OSError:
        return False  # load_table reports the unreadable file
    return column in [h.strip() for h in header]


def predict_rows(run: Run, source: str) -> str:
    """CSV text: image sources get a leading ``file`` column (paths relative to the folder), then
    ``prediction`` and, for classifiers, ``prob_<class>`` (calibrated)."""
    files = None
    if run.image_shape is not None:
        X, _, files = read_images(run, source, labelled=False)
    else:
        X, _ = read_features(run, source, labelled=False)
    lead = ["file"] if files else []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if run.task == "classification":
        probs = run.predict_proba(X)
        names = run.class_names
        writer.writerow(lead + ["prediction"] + [f"prob_{c}" for c in names])
        labels = np.asarray(names, dtype=object)[probs.argmax(1)]
        for i, (label, row) in enumerate(zip(labels, probs)):
            writer.writerow(([files[i]] if files else []) + [label] + [f"{p:.6f}" for p in row])
    else:
        writer.writerow(lead + ["prediction"])
        for i, value in enumerate(run.predict(X)):
            writer.writerow(([files[i]] if files else []) + [f"{value:.8g}"])
    return buf.getvalue()


def evaluate_rows(run: Run, source: str) -> dict:
    X, y = read_features(run, source, labelled=True)
    if y is None:
        raise UserError("no target column to evaluate against", source,
                        f"include the '{run.info.get('target_name')}' column")
    if run.task == "classification":
        y_enc, _ = encode_labels(y, run.class_names)
        probs = torch.as_tensor(run.predict_proba(X))
        result = classification_metrics(probs, torch.as_tensor(y_enc), class_names=run.class_names,
                                        n_bins=run.config.get("calibration", {}).get("ece_bins", 15))
    else:
        result = regression_metrics(torch.as_tensor(run.predict(X)), torch.as_tensor(y.astype(np.float64)))
    return result
