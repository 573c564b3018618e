"""Data the caller already holds in memory: ``(X, y)`` NumPy arrays or tensors, a
``torch.utils.data.Dataset`` yielding ``(x, y)``, or a ``DataLoader`` yielding ``(xb, yb)`` batches.

Each becomes a `nnrecipe.data.sources.Table` like a file would, so the split, the input transform,
the run directory and `predict` treat it the same way:

- X of shape [N, D]: vectors (standardized per feature unless ``data.standardize`` is false);
- X of shape [N, C, H, W]: images (normalized per channel, as for the built-in image models);
- any other shape [N, *S]: passed to the model untouched, rows flattened in the table and
  reshaped to S on the way in (`nnrecipe.data.transform.InputTransform`).

A Dataset or DataLoader is read once, in order, into memory (its items stacked); data that does
not fit in memory belongs in an image folder with ``data.lazy``. Written here because no library
turns these three containers into one labelled table with a clear error for each malformed item.
"""

from __future__ import annotations

import numpy as np

from nnrecipe.data.images import image_feature_names
from nnrecipe.data.sources import Table
from nnrecipe.errors import UserError

MEMORY_PREFIX = "memory:"  # data.source of a run trained on in-memory data


def _numpy(value, where: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (on any device)
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot read {where} as an array ({type(exc).__name__})", where,
                        "pass NumPy arrays or tensors") from None


def _pair(item, where: str) -> tuple:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        kind = f"a {type(item).__name__}" + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
        raise UserError(f"{where} yields {kind}, not an (x, y) pair", where,
                        "make __getitem__ return (input, target), e.g. `return x, y`")
    return item[0], item[1]


def _stack_dataset(dataset, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        n = len(dataset)
    except TypeError:
        raise UserError(f"{where} has no len()", where, "pass a map-style Dataset, or a DataLoader") from None
    if n == 0:
        raise UserError(f"{where} is empty", where, "pass a Dataset with at least one (x, y) item")
    xs, ys = [], []
    for i in range(n):
        x, y = _pair(dataset[i], f"{where}[{i}]")
        xs.append(_numpy(x, f"{where}[{i}] input"))
        ys.append(_numpy(y, f"{where}[{i}] target"))
    return _stack(xs, where, "input"), _stack(ys, where, "target")


def _stack_loader(loader, where: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i, batch in enumerate(loader):
        x, y = _pair(batch, f"{where} batch {i}")
        xs.append(_numpy(x, f"{where} batch {i} input"))
        ys.append(_numpy(y, f"{where} batch {i} target").reshape(len(xs[-1]), *np.shape(y)[1:]))
    if not xs:
        raise UserError(f"{where} yields no batches", where, "pass a DataLoader over at least one example")
    try:
        return np.concatenate(xs), np.concatenate(ys)
    except ValueError:
        raise UserError(f"{where} yields batches of different input shapes", where,
                        "make every example the same shape") from None


def _stack(parts: list[np.ndarray], where: str, what: str) -> np.ndarray:
    shapes = {p.shape for p in parts}
    if len(shapes) > 1:
        raise UserError(f"{where} yields {what}s of {len(shapes)} different shapes "
                        f"({', '.join(map(str, sorted(shapes)[:3]))})", where, f"make every {what} the same shape")
    return np.stack(parts)


def is_in_memory(data) -> bool:
    """True for the containers `to_table` reads (anything but a source name or path)."""
    return data is not None and not isinstance(data, (str, bytes)) and not hasattr(data, "__fspath__")


def _arrays(data, where: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise UserError(f"{where} is a sequence of {len(data)} items, not (X, y)", where,
                            "pass a pair (X, y) of arrays, a Dataset or a DataLoader")
        return _numpy(data[0], f"{where} X"), _numpy(data[1], f"{where} y")
    if hasattr(data, "dataset") and hasattr(data, "batch_size"):  # a DataLoader
        return _stack_loader(data, where)
    if hasattr(data, "__getitem__"):
        return _stack_dataset(data, where)
    raise UserError(f"cannot read {where} of type {type(data).__name__}", where,
                    "pass (X, y) arrays or tensors, a torch Dataset yielding (x, y), a DataLoader, "
                    "or a data source name/path")


def to_table(data, *, where: str = "data", name: str = "arrays") -> Table:
    """A labelled `Table` from (X, y), a Dataset or a DataLoader (see the module docstring)."""
    X, y = _arrays(data, where)
    if X.ndim < 2:
        raise UserError(f"{where} inputs have shape {X.shape}; expected [N, features] or [N, ...]", where,
                        "give one row per example (reshape a single feature to [N, 1])")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(X):
        raise UserError(f"{where} has {len(X)} inputs but targets of shape {y.shape}", where,
                        "give one scalar target (class label or number) per input")
    if X.dtype.kind not in "biuf":
        raise UserError(f"{where} inputs have dtype {X.dtype}, not numbers", where, "pass numeric inputs")
    if not np.isfinite(X.astype(np.float64)).all():
        raise UserError(f"{where} inputs hold NaN or Inf", where, "impute or drop those rows first")
    shape = tuple(int(s) for s in X.shape[1:])
    flat = X.reshape(len(X), -1).astype(np.float64)
    if len(shape) == 1:
        return Table(X=flat, y=y, feature_names=[f"x{i}" for i in range(shape[0])], target_name="y", name=name)
    if len(shape) == 3:
        return Table(X=flat, y=y, feature_names=image_feature_names(shape), target_name="y", name=name,
                     image_shape=shape)
    return Table(X=flat, y=y, feature_names=[f"x{i}" for i in range(flat.shape[1])], target_name="y", name=name,
                 input_shape=shape)
