"""Captioned images from files: a folder with ``captions.csv``, or a COCO captions JSON.

- A folder DIR holding the images and ``DIR/captions.csv`` with a header ``file,caption``: ``file``
  is relative to DIR, several rows may name one image (its reference captions, in file order).
  Images appear in order of their first row.
- A COCO captions file ``captions.json`` ({"images": [{"id", "file_name"}], "annotations":
  [{"image_id", "caption"}]}, the format of ``captions_train2014.json``), the images beside it
  (``file_name`` relative to the JSON's folder). Images without a caption are left out.
- Without captions (`read_images`, for ``nnrecipe predict``): either of the above, a folder of
  .png/.jpg images (captions.csv absent: every image directly inside), or one image file.

Pixels: decoded with Pillow by `nnrecipe.data.images.decode_image`, scaled to [0, 1], resized to
``image_size`` (None: the first image's size); ``channels`` None gives RGB if any image is colour.
Every problem (missing file, empty caption, bad JSON, an image Pillow cannot read) is a `UserError`
naming the file and the row. Hand-written: the readers are a csv/json walk over Pillow.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnrecipe.data.images import IMAGE_SUFFIXES, bad_image_errors, decode_image, image_hw, unreadable_image
from nnrecipe.errors import UserError

CAPTIONS_CSV = "captions.csv"
_CSV_FIX = "give captions.csv a header row `file,caption` and one row per (image, caption)"
_COCO_FIX = 'write {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}'


@dataclass
class CaptionSet:
    images: np.ndarray  # float32 [N, C, H, W] in [0, 1]
    files: list[str]  # one name per image (relative to the source)
    captions: list[list[str]]  # the reference captions of each image ([] when unlabelled)
    name: str

    def subset(self, index) -> CaptionSet:
        index = [int(i) for i in index]
        return CaptionSet(self.images[index], [self.files[i] for i in index], [self.captions[i] for i in index],
                          self.name)


def _csv_rows(folder: Path) -> list[tuple[str, str]]:
    path = folder / CAPTIONS_CSV
    if not path.is_file():
        raise UserError(f"no {CAPTIONS_CSV} in '{folder}'", str(folder),
                        f"add {CAPTIONS_CSV} with rows `file,caption`, or pass a COCO captions .json")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {CAPTIONS_CSV} ({type(exc).__name__})", str(path), "save it as UTF-8 CSV") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if "file" not in header or "caption" not in header:
        raise UserError(f"{CAPTIONS_CSV} has columns {header}, not file and caption", str(path), _CSV_FIX)
    i_file, i_cap = header.index("file"), header.index("caption")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        file = row[i_file].strip() if len(row) > i_file else ""
        caption = row[i_cap].strip() if len(row) > i_cap else ""
        if not file or not caption:
            raise UserError(f"row {line} has an empty {'file' if not file else 'caption'}", str(path),
                            "give every row an image file and a non-empty caption")
        out.append((file, caption))
    if not out:
        raise UserError(f"{CAPTIONS_CSV} has no rows", str(path), _CSV_FIX)
    return out


def _coco_rows(path: Path) -> list[tuple[str, str]]:
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read '{path}' ({type(exc).__name__})", str(path), "pass a UTF-8 JSON file") from None
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg} at line {e.lineno}, column {e.colno}", str(path),
                        "fix the JSON syntax there") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("images"), list) \
            or not isinstance(tree.get("annotations"), list):
        raise UserError("not a COCO captions file (no 'images' and 'annotations' lists)", str(path), _COCO_FIX)
    names = {}
    for k, image in enumerate(tree["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise UserError(f"images[{k}] needs an id and a file_name", str(path), _COCO_FIX)
        names[image["id"]] = image["file_name"]
    by_image: dict = {}
    for k, ann in enumerate(tree["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
            raise UserError(f"annotations[{k}] needs an image_id and a caption", str(path), _COCO_FIX)
        if ann["image_id"] not in names:
            raise UserError(f"annotations[{k}] names image_id {ann['image_id']!r}, which is not in 'images'",
                            str(path), "list every captioned image under 'images'")
        if not ann["caption"].strip():
            raise UserError(f"annotations[{k}] has an empty caption", str(path), "drop it or write the caption")
        by_image.setdefault(ann["image_id"], []).append(ann["caption"].strip())
    rows = [(names[i], c) for i in names for c in by_image.get(i, [])]
    if not rows:
        raise UserError("the COCO file has no captions", str(path), _COCO_FIX)
    return rows


def _group(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for file, caption in rows:
        grouped.setdefault(file, []).append(caption)
    return grouped


def _decode_all(root: Path, files: list[str], *, where: str, image_size, channels) -> np.ndarray:
    size, errors, arrays = image_hw(image_size), bad_image_errors(), []
    for rel in files:
        path = root / rel
        if not path.is_file():
            raise UserError(f"image '{rel}' not found", where, f"put it in {root} or fix its name")
        try:
            pixels = decode_image(path, channels, size)
        except errors as exc:
            raise unreadable_image(exc, rel, path) from None
        size = size or pixels.shape[:2]  # the first image sets the size for the rest
        arrays.append(pixels)
    n_channels = max(a.shape[2] for a in arrays)  # gray next to colour: repeat the gray channel
    out = np.empty((len(arrays), n_channels, *size), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i] = a.transpose(2, 0, 1) / np.float32(255.0)
    return out


def _labelled_rows(source: str) -> tuple[Path, list[tuple[str, str]], str]:
    """(image root, (file, caption) rows, where rows come from) of a captions folder or COCO file."""
    path = Path(source)
    if path.is_dir():
        return path, _csv_rows(path), str(path / CAPTIONS_CSV)
    if path.is_file() and path.suffix.lower() == ".json":
        return path.parent, _coco_rows(path), str(path)
    if not path.exists():
        raise UserError(f"captions source not found: '{source}'", "--data",
                        f"pass a folder with {CAPTIONS_CSV}, a COCO captions .json, or cap:digits")
    raise UserError(f"'{source}' is neither a folder with {CAPTIONS_CSV} nor a COCO captions .json", "--data",
                    f"pass a folder with {CAPTIONS_CSV}, a COCO captions .json, or cap:digits")


def read_captions(source: str, *, image_size=None, channels: int | None = None) -> CaptionSet:
    """Every captioned image of a captions folder or COCO file (module docstring)."""
    root, rows, where = _labelled_rows(source)
    grouped = _group(rows)
    files = list(grouped)
    images = _decode_all(root, files, where=where, image_size=image_size, channels=channels)
    return CaptionSet(images, files, [grouped[f] for f in files], Path(source).stem or "captions")


def read_images(source: str, *, image_size, channels: int | None) -> CaptionSet:
    """Images to caption: a captions folder or COCO file (captions kept), a folder of images, one image."""
    path = Path(source)
    if path.is_dir() and not (path / CAPTIONS_CSV).is_file():
        files = sorted(p.name for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise UserError(f"folder '{source}' holds no .png/.jpg images and no {CAPTIONS_CSV}", "--data",
                            "pass a folder of images, a captions folder, a COCO .json or one image")
        images = _decode_all(path, files, where=source, image_size=image_size, channels=channels)
        return CaptionSet(images, files, [[] for _ in files], path.name)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        images = _decode_all(path.parent, [path.name], where=source, image_size=image_size, channels=channels)
        return CaptionSet(images, [path.name], [[]], path.stem)
    return read_captions(source, image_size=image_size, channels=channels)


__all__ = ["CAPTIONS_CSV", "CaptionSet", "read_captions", "read_images"]
