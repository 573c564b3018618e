"""Data sources: scikit-learn's bundled sets, CSV files, .npz archives and folders of images.

Every source becomes a `Table`: features X as float64 [N, D], raw targets y [N] (ints, floats or
strings; None when there is no target), the feature names, the target name and a short name.
Image sources also carry ``image_shape`` (C, H, W): their rows are images flattened in C, H, W
order, so D = C·H·W and ``X.reshape(N, C, H, W)`` restores them (`nnrecipe.data.images`).

- Bundled (shipped with scikit-learn, no download): digits (1797×64, 10 classes "0".."9"; also
  1×8×8 images with pixel values 0..16 as scikit-learn gives them),
  breast_cancer (569×30, 2 classes), wine (178×13, 3), iris (150×4, 3), diabetes (442×10,
  regression). breast_cancer, wine and iris use scikit-learn's ``target_names`` strings as labels
  ("malignant", "setosa", ...) so reports show meaningful class names.
- CSV: a header row is required. The target is the column named by ``target`` (default: the last
  column) and may hold numbers or strings; every other column must be numeric. Empty cells, "nan"
  and "inf" are rejected rather than imputed silently. Blank lines are skipped. Parsed with the
  stdlib ``csv`` module so that nnrecipe does not depend on pandas.
- .npz: arrays ``X`` [N, D] and ``y`` [N], as written by ``np.savez(path, X=X, y=y)``; or image
  arrays X [N, C, H, W], [N, H, W, C] (detected) or [N, H, W] (one channel), values kept as given.
- A folder: one subfolder of .png/.jpg/.jpeg images per class (class = subfolder name), read
  with Pillow, resized to ``image_size`` and converted to ``channels`` (see
  `nnrecipe.data.images`); its target is named "label" and ``row_names`` holds the file paths.

At predict time (``require_target=False``) y is always None: a target column, if present, is
dropped, and with no ``target`` named every column is a feature.
"""

from __future__ import annotations

import csv
import difflib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnrecipe.data.images import image_feature_names, load_image_folder, to_nchw
from nnrecipe.errors import UserError

BUNDLED = ("digits", "breast_cancer", "wine", "iris", "diabetes")
_SHOWN = 5  # how many offending names an error message spells out before "and N more"


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class Table:
    X: np.ndarray  # float64 [N, D]
    y: np.ndarray | None  # raw labels/targets [N]; None when there is no target
    feature_names: list[str]
    target_name: str | None
    name: str  # the bundled name, the file stem or the folder name
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) for images; None for vectors
    row_names: list[str] | None = None  # image files relative to the folder; None otherwise
    skipped: int = 0  # unreadable images skipped (skip_bad_images=True)
    input_shape: tuple[int, ...] | None = None  # other N-D inputs (in-memory arrays): passed through untouched


def load_table(source: str, *, target: str | None = None, require_target: bool = True,
               image_size: int | tuple[int, int] | None = None, skip_bad_images: bool = False,
               channels: int | None = None) -> Table:
    """Load a bundled data set by name, a .csv / .npz file or a folder of images by path.

    ``image_size`` (S or (H, W)), ``skip_bad_images`` and ``channels`` (1, 3 or None) apply to
    image folders only; .npz images keep their size and channels.
    """
    if source.startswith("memory:"):  # nnrecipe.data.arrays.MEMORY_PREFIX: nothing on disk to re-read
        raise UserError(f"this run was trained on data in memory ('{source}'), which its config cannot re-read",
                        "data.source", "pass the data again (the API's data=(X, y)), or a file with --data")
    if source in BUNDLED:
        _check_fixed_target(target, "target", f"bundled data set '{source}'", require_target)
        return _load_bundled(source, require_target)
    path = Path(source)
    suffix = path.suffix.lower()
    if path.is_dir():
        _check_fixed_target(target, "label", f"image folder '{source}'", require_target)
        images = load_image_folder(path, source, require_target=require_target,
                                   image_size=image_size, skip_bad_images=skip_bad_images,
                                   channels=channels)
        return Table(X=images.X, y=images.y, feature_names=image_feature_names(images.image_shape),
                     target_name="label" if require_target else None,
                     name=path.resolve().name or source, image_shape=images.image_shape,
                     row_names=images.row_names, skipped=images.skipped)
    if not suffix and "/" not in source and os.sep not in source:
        close = difflib.get_close_matches(source, BUNDLED, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"unknown data set '{source}'{hint}", "data.source",
                        f"use one of {', '.join(BUNDLED)}, or a path to a .csv or .npz file "
                        "or a folder of images")
    if suffix not in (".csv", ".npz"):
        raise UserError(f"unknown file type '{suffix or '(no extension)'}' for '{source}'",
                        "data.source", "use a .csv file with a header row, an .npz file with "
                        "arrays X and y, a folder with a subfolder of images per class, or one "
                        f"of {', '.join(BUNDLED)}")
    if not path.is_file():
        raise UserError(f"file not found: '{source}'", "data.source",
                        f"check the path (relative paths start from {Path.cwd()})")
    if path.stat().st_size == 0:
        raise UserError(f"file '{source}' is empty", source, "write a header row and data rows")
    if suffix == ".csv":
        return _load_csv(path, source, target, require_target)
    _check_fixed_target(target, "y", f".npz file '{source}'", require_target)
    return _load_npz(path, source, require_target)


def _check_fixed_target(target: str | None, only: str, what: str, require_target: bool) -> None:
    # Bundled sets and .npz files have one fixed target; naming another is a mistake at fit time,
    # but at predict time the training run's CSV target name may come along and is ignored.
    if require_target and target is not None and target != only:
        raise UserError(f"data.target='{target}' does not apply to the {what}, whose target is "
                        f"'{only}'", "data.target", "remove data.target (it selects a CSV column)")


def _load_bundled(name: str, require_target: bool) -> Table:
    from sklearn import datasets  # imported here: loading sklearn.datasets costs ~0.5 s

    bunch = getattr(datasets, f"load_{name}")()
    if name == "digits":
        y = bunch.target.astype(np.int64)
    elif name == "diabetes":
        y = bunch.target.astype(np.float64)
    else:
        y = np.asarray(bunch.target_names).astype(str)[bunch.target]
    return Table(X=np.asarray(bunch.data, dtype=np.float64), y=y if require_target else None,
                 feature_names=[str(f) for f in bunch.feature_names],
                 target_name="target" if require_target else None, name=name,
                 image_shape=(1, 8, 8) if name == "digits" else None)


def _listing(names: list[str], shown: int = _SHOWN) -> str:
    text = ", ".join(f"'{n}'" for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _read_csv(path: Path, source: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and the line number of each data row; blank lines skipped."""
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: drop Excel's BOM
            reader = csv.reader(f)
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise UserError(f"'{source}' is not UTF-8 text ({e.reason} at byte {e.start})", source,
                        "save the file as UTF-8 CSV") from None
    except csv.Error as e:
        raise UserError(f"cannot parse CSV: {e}", source,
                        "check the quoting near that line") from None
    except OSError as e:
        raise UserError(f"cannot read '{source}': {e.strerror}", source,
                        "check the file's permissions") from None
    if not rows:
        raise UserError(f"file '{source}' has no rows", source, "write a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if "" in header:
        raise UserError(f"header column {header.index('') + 1} has no name", source,
                        "name every column (pandas: write with to_csv(index=False))")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UserError(f"duplicate column names in the header: {_listing(dupes)}", source,
                        "give every column a distinct name")
    if len(rows) == 1:
        raise UserError(f"file '{source}' has a header row but no data rows", source,
                        "add data rows below the header")
    ragged = [(line, len(row)) for line, row in zip(lines[1:], rows[1:]) if len(row) != len(header)]
    if ragged:
        line, got = ragged[0]
        more = f" ({len(ragged)} such rows in all)" if len(ragged) > 1 else ""
        raise UserError(f"line {line} has {got} fields but the header has {len(header)}{more}",
                        source, "give every row one value per header column; quote values "
                        "that contain commas")
    return header, rows[1:], lines[1:]


def _to_floats(cells: tuple[str, ...]) -> tuple[np.ndarray, str | None]:
    """The column as float64 (empty cells → NaN) and the first non-numeric cell, if any."""
    try:
        return np.asarray(cells, dtype=str).astype(np.float64), None  # fast path: all numeric
    except ValueError:
        pass
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell)
        except ValueError:
            if cell.strip():
                return values, cell.strip()
            values[i] = np.nan
    return values, None


def _raise_not_finite(bad: list[tuple[str, int, int]], source: str) -> None:
    """bad: (column name, rows with NaN/Inf/empty, first line number) per offending column."""
    if not bad:
        return
    name, count, line = bad[0]
    others = f"; so do {_listing([b[0] for b in bad[1:]])}" if len(bad) > 1 else ""
    rows = "row" if count == 1 else "rows"
    raise UserError(f"column '{name}' has {count} {rows} with NaN/Inf or empty values, first on "
                    f"line {line}{others}", source, "clean or impute them before training")


def _load_csv(path: Path, source: str, target: str | None, require_target: bool) -> Table:
    header, rows, lines = _read_csv(path, source)
    if target is not None and target not in header and require_target:
        lowered = {h.lower(): h for h in reversed(header)}  # case-insensitive, first wins
        close = [lowered[c] for c in difflib.get_close_matches(target.lower(), list(lowered), n=1)]
        ordered = sorted(header, key=lambda h: -difflib.SequenceMatcher(
            None, target.lower(), h.lower()).ratio())  # stable: ties keep file order
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"no column '{target}' in the header{hint}", source,
                        f"set data.target to one of {_listing(ordered, shown=20)}")
    if target in header:
        target_idx = header.index(target)
    else:
        target_idx = len(header) - 1 if require_target else None
    columns = list(zip(*rows))
    feature_idx = [j for j in range(len(header)) if j != target_idx]
    if not feature_idx:
        raise UserError(f"file '{source}' has only the target column '{header[target_idx]}'",
                        source, "add feature columns")
    features, non_numeric, bad = [], [], []
    for j in feature_idx:
        values, example = _to_floats(columns[j])
        if example is not None:
            non_numeric.append(f"'{header[j]}' (e.g. '{example}')")
            continue
        finite = np.isfinite(values)
        if not finite.all():
            bad.append((header[j], int((~finite).sum()), lines[int(np.argmin(finite))]))
        features.append(values)
    if non_numeric:
        shown = ", ".join(non_numeric[:_SHOWN])
        more = f" and {len(non_numeric) - _SHOWN} more" if len(non_numeric) > _SHOWN else ""
        plural = "s are" if len(non_numeric) > 1 else " is"
        raise UserError(f"{len(non_numeric)} feature column{plural} not "
                        f"numeric: {shown}{more}", source,
                        "encode them as numbers or drop them; only the target column, named by "
                        "data.target, may hold strings")
    y = None
    if require_target:
        y, missing = _target_column(columns[target_idx])
        if missing.any():
            bad.append((header[target_idx], int(missing.sum()), lines[int(np.argmax(missing))]))
    _raise_not_finite(bad, source)
    return Table(X=np.stack(features, axis=1), y=y,
                 feature_names=[header[j] for j in feature_idx],
                 target_name=header[target_idx] if require_target else None, name=path.stem)


def _target_column(cells: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The target as float64 when every cell is a number, else as strings; and its missing mask."""
    stripped = [c.strip() for c in cells]
    values, example = _to_floats(tuple(stripped))
    if example is None:
        return values, ~np.isfinite(values)
    missing = np.array([c == "" or _is_non_finite(c) for c in stripped])
    return np.asarray(stripped, dtype=str), missing


def _is_non_finite(cell: str) -> bool:
    """True for the spellings float() reads as NaN/Inf: "nan", "-inf", "Infinity", ..."""
    try:
        return not np.isfinite(float(cell))
    except ValueError:
        return False


def _load_npz(path: Path, source: str, require_target: bool) -> Table:
    fix = ("save it with np.savez(path, X=X, y=y): X 2-D [rows, features] (or images N×C×H×W, "
           "N×H×W×C or N×H×W), y 1-D [rows]")
    if not zipfile.is_zipfile(path):  # an .npz is a zip of .npy files
        raise UserError(f"'{source}' is not an .npz archive (not a zip file)", source, fix)
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if "X" not in names or (require_target and "y" not in names):
                missing = "X" if "X" not in names else "y"
                raise UserError(f"no array '{missing}' in the archive (it holds: "
                                f"{', '.join(names) or 'nothing'})", source, fix)
            X = archive["X"]
            y = archive["y"] if require_target else None
    except UserError:
        raise
    except ValueError:  # allow_pickle=False refuses object arrays: loading them runs code
        raise UserError(f"'{source}' holds object arrays, which nnrecipe does not unpickle",
                        source, "save X as numbers and y as numbers or strings") from None
    except Exception as e:  # zipfile.BadZipFile, EOFError, OSError: a damaged archive
        raise UserError(f"'{source}' is not a valid .npz archive ({type(e).__name__}: {e})",
                        source, fix) from None
    if X.ndim not in (2, 3, 4) or X.shape[0] == 0 or X.shape[1] == 0:
        raise UserError(f"array X has shape {X.shape}; expected 2-D [rows, features] with at "
                        "least one of each, or 3-D/4-D images", source, fix)
    if X.dtype.kind not in "biuf":
        raise UserError(f"array X has dtype {X.dtype}; features must be numbers", source,
                        "encode the features as numbers before saving")
    image_shape = None
    if X.ndim > 2:
        X = to_nchw(X, source)
        image_shape = tuple(int(v) for v in X.shape[1:])
        X = X.reshape(len(X), -1)
    X = X.astype(np.float64)
    names = (image_feature_names(image_shape) if image_shape
             else [f"x{j}" for j in range(X.shape[1])])
    bad_cols = np.flatnonzero(~np.isfinite(X).all(axis=0))
    bad = [(names[j], int((~np.isfinite(X[:, j])).sum()), int(np.argmin(np.isfinite(X[:, j])))
            + 1) for j in bad_cols]
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            raise UserError(f"array y has shape {y.shape} but X has {len(X)} rows; expected "
                            f"y of shape ({len(X)},)", source, fix)
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            missing = ~np.isfinite(y)
            bad.append(("y", int(missing.sum()), int(np.argmax(missing)) + 1))
    if bad:  # "line" here means row number (1-based) in the array
        name, count, row = bad[0]
        others = f"; so do {_listing([b[0] for b in bad[1:]])}" if len(bad) > 1 else ""
        rows = "row" if count == 1 else "rows"
        raise UserError(f"column '{name}' has {count} {rows} with NaN/Inf values, first at row "
                        f"{row}{others}", source, "clean or impute them before training")
    return Table(X=X, y=y, feature_names=names, target_name="y" if y is not None else None,
                 name=path.stem, image_shape=image_shape)
