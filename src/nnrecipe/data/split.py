"""Seeded train/validation/test splits of row indices.

The test rows come off first (``test_fraction`` of all N rows), then the validation rows from the
rest with

    val_share = val_fraction / (1 − test_fraction)

so that validation is ``val_fraction`` of all rows: 70/10/20 by default. With ``has_test`` (a
separate labelled test file) only the second split runs, with the same val_share, so train and
validation keep the proportions they have by default. Both splits use
``sklearn.model_selection.train_test_split`` with ``random_state=seed`` (the same seed gives the
same split) and, when ``stratify``, keep each class's share in every split. Sizes follow
scikit-learn: a split of n rows at fraction f takes ceil(f·n) rows.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split

from nnrecipe.errors import UserError

_FIX_SIZES = ("add rows, change --set data.val_fraction=... / --set data.test_fraction=..., "
              "or give a separate test file with --set data.test_data=PATH")
_FIX_STRATIFIED = ("add rows, or raise --set data.val_fraction=... / --set data.test_fraction=... "
                   "so that every split can hold one row of each class")
_FIX_PLAIN = ("add rows so that train, val and test each get at least one, or give a separate "
              "test file with --set data.test_data=PATH")


def split_indices(n: int, *, y: np.ndarray | None, val_fraction: float, test_fraction: float,
                  seed: int, stratify: bool,
                  has_test: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted int64 (train, val, test) row indices; test is empty when ``has_test``."""
    if stratify and (y is None or len(y) != n):
        raise ValueError("stratify=True needs y with one label per row")
    if val_fraction + test_fraction >= 1:
        raise UserError(f"data.val_fraction + data.test_fraction = "
                        f"{val_fraction + test_fraction:g} leaves no training rows", "config",
                        "make their sum less than 1 (the default is 0.1 + 0.2)")
    labels = _stratify_labels(y) if stratify else None
    val_share = val_fraction / (1 - test_fraction)
    _check_sizes(n, labels, val_share, 0.0 if has_test else test_fraction)
    rows = np.arange(n)
    try:
        if has_test:
            rest, test = rows, rows[:0]
        else:
            rest, test = train_test_split(rows, test_size=test_fraction, random_state=seed,
                                          stratify=labels)
        train, val = train_test_split(rest, test_size=val_share, random_state=seed,
                                      stratify=None if labels is None else labels[rest])
    except ValueError as e:  # a case _check_sizes did not foresee: pass sklearn's reason on
        raise UserError(f"cannot split {n} rows into train/val/test: {e}", "data",
                        _FIX_SIZES) from None
    return tuple(np.sort(part).astype(np.int64) for part in (train, val, test))


def _stratify_labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    # Mixed object arrays cannot be sorted by np.unique; their string forms can.
    return y.astype(str) if y.dtype.kind == "O" else y


def _sizes(n: int, val_share: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) row counts as sklearn computes them: ceil for the held-out part."""
    n_test = math.ceil(test_fraction * n) if test_fraction > 0 else 0
    n_val = math.ceil(val_share * (n - n_test))
    return n - n_test - n_val, n_val, n_test


def _check_sizes(n: int, labels: np.ndarray | None, val_share: float, test_fraction: float) -> None:
    """UserErrors, with counts and a fix, for the splits sklearn would refuse."""
    need_test = test_fraction > 0
    parts = "train/val/test" if need_test else "train/val"
    classes, counts = (np.unique(labels, return_counts=True) if labels is not None
                       else (np.empty(0), np.empty(0, dtype=int)))
    per_split = max(1, len(classes))  # stratified: each split must see every class

    def enough(m: int) -> bool:
        n_train, n_val, n_test = _sizes(m, val_share, test_fraction)
        return min(n_train, n_val) >= per_split and (not need_test or n_test >= per_split)

    if not enough(n):
        shares = [(1 - test_fraction) * (1 - val_share), (1 - test_fraction) * val_share]
        # ceil(f·m) >= C needs m > (C − 1)/f, and train (the floored part) needs more: a safe start
        start = max(n + 1, int((per_split - 1) / min(shares + [test_fraction or 1.0])))
        needed = next((m for m in range(start, start + 100_000) if enough(m)), None)
        counts_now = _sizes(n, val_share, test_fraction)[: 3 if need_test else 2]
        sizes = "/".join(str(s) for s in counts_now)
        what = (f"{n} rows are too few for {parts} splits (sizes would be {sizes})"
                if per_split == 1 else
                f"{n} rows are too few for stratified {parts} splits of {len(classes)} classes "
                f"(sizes would be {sizes}; each split needs at least one row per class)")
        need = f"; at least {needed} rows are needed" if needed else ""
        raise UserError(f"{what}{need}", "data", _FIX_PLAIN if per_split == 1 else _FIX_STRATIFIED)
    if labels is not None:
        # Every class is split twice (test off, then val off the rest); sklearn needs at least
        # 2 rows of a class in each array it splits, hence 3 rows overall (2 with has_test).
        minimum = 3 if need_test else 2
        rare = [(c, k) for c, k in zip(classes.tolist(), counts.tolist()) if k < minimum]
        if rare:
            shown = ", ".join(f"'{c}' ({k} row{'s' if k > 1 else ''})" for c, k in rare[:5])
            more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
            raise UserError(f"class{'es' if len(rare) > 1 else ''} {shown}{more} too rare for "
                            f"a stratified {parts} split, which needs at least {minimum} rows "
                            "per class", "data",
                            "add rows of that class, or drop or merge it with another class")


def holdout(n: int, *, y: np.ndarray | None, fraction: float, seed: int,
            stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (rest, held-out) row indices, ceil(fraction·n) held out: the test split of data that
    came with its own validation set."""
    rows = np.arange(n)
    try:
        rest, held = train_test_split(rows, test_size=fraction, random_state=seed,
                                      stratify=_stratify_labels(y) if stratify else None)
    except ValueError as e:
        raise UserError(f"cannot hold out a test split of {fraction:g} from {n} rows: {e}", "data",
                        "add rows, pass test= as well, or change data.test_fraction") from None
    return np.sort(rest).astype(np.int64), np.sort(held).astype(np.int64)
