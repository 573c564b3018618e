"""Task inference and label encoding.

Inference rule (`infer_task`), applied to the raw target column y:

- strings, bools and integers → classification;
- floats → classification when every value is integral and there are at most
  ``MAX_FLOAT_CLASSES`` (20) distinct values (a CSV column of 0/1 or 1..5 ratings), otherwise
  regression (diabetes' target has 214 distinct values → regression).

A wrong guess is overridden with ``--set data.task=regression`` (or ``classification``).

Encoding (`encode_labels`): the C distinct labels are sorted (numerically for numbers,
lexicographically for strings) and mapped to 0..C−1. A class name is ``str(label)``, with integral
numbers written without ".0" (so a CSV column read as 0.0/1.0 gives classes "0" and "1"). At
predict/evaluate time the training class names are passed in and labels are mapped through them.
"""

from __future__ import annotations

import numbers

import numpy as np

from nnrecipe.errors import UserError

MAX_FLOAT_CLASSES = 20


def _plain(y: np.ndarray) -> np.ndarray:
    """An object array rebuilt with a concrete dtype (numbers or strings) where NumPy can."""
    y = np.asarray(y)
    if y.dtype.kind == "O":
        items = y.tolist()
        if all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in items):
            return np.asarray(items) if items else np.empty(0)
        return np.asarray([str(v) for v in items], dtype=str)
    return y


def infer_task(y: np.ndarray) -> str:
    """"classification" or "regression" for the raw target y (rule: module docstring)."""
    y = _plain(y)
    if y.dtype.kind != "f":
        return "classification"  # bool, int, unsigned, str, bytes
    values = np.unique(y)
    integral = bool(np.isfinite(values).all() and (values == np.round(values)).all())
    return "classification" if integral and len(values) <= MAX_FLOAT_CLASSES else "regression"


def class_name(label: object) -> str:
    """The printed name of one label: integral numbers without ".0"."""
    if isinstance(label, (bool, np.bool_)):
        return str(bool(label))
    if isinstance(label, (numbers.Integral, np.integer)):
        return str(int(label))
    if isinstance(label, (numbers.Real, np.floating)):
        value = float(label)
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(label, bytes):
        return label.decode("utf-8", "replace")
    return str(label)


def encode_labels(y: np.ndarray,
                  class_names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Labels → int64 codes in 0..C−1 and the C class names (see the module docstring)."""
    y = _plain(y)
    uniques, inverse = np.unique(y, return_inverse=True)  # sorted: numeric or lexicographic
    names = [class_name(u) for u in uniques]
    if class_names is None:
        # Two labels may print alike (1 and 1.0 never both occur after _plain, but "1" and
        # " 1" could); merge them by name so that a class name identifies one class.
        class_names = list(dict.fromkeys(names))
        if len(class_names) < 2:
            only = f"only one class '{class_names[0]}'" if class_names else "no labels"
            raise UserError(f"{only} in the target ({len(y)} rows)", "target column",
                            "a classifier needs at least 2 classes: check data.target, or "
                            "set data.task=regression for a numeric target")
    index = {name: i for i, name in enumerate(class_names)}
    unseen = [(n, int((inverse.ravel() == k).sum())) for k, n in enumerate(names) if n not in index]
    if unseen:
        shown = ", ".join(f"'{n}' ({c} rows)" for n, c in unseen[:5])
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        raise UserError(f"label{'s' if len(unseen) > 1 else ''} {shown}{more} not seen in "
                        f"training (classes: {', '.join(class_names)})", "target column",
                        "drop those rows or retrain with data that includes them")
    codes = np.asarray([index[n] for n in names], dtype=np.int64)[inverse.ravel()]
    return codes, list(class_names)


def regression_targets(y: np.ndarray) -> np.ndarray:
    """The raw target as float64 for regression; a non-numeric target is a UserError."""
    y = _plain(y)
    try:
        return y.astype(np.float64)
    except ValueError:
        example = next(v for v in y.tolist() if not _is_number(v))
        raise UserError(f"the target holds non-numeric values such as '{example}'; regression "
                        "needs numbers", "target column",
                        "set data.task=classification, or point data.target at a numeric "
                        "column") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
