"""Read COCO-format detection files: a ground-truth JSON (images, annotations, categories) and a
results JSON (a list of {image_id, category_id, bbox [x, y, w, h], score}), as pycocotools'
COCO() and loadRes() read them, but checked up front so a bad file fails with a UserError that
names the file, the entry and the fix, instead of a KeyError deep inside the evaluation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from nnrecipe.errors import UserError

_GT_KEYS = ("images", "annotations", "categories")
_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "area")
_DET_KEYS = ("image_id", "category_id", "bbox", "score")


def _read_json(path, role: str):
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{role} file not found: '{path}'", role,
                        f"check the path (relative paths start from {Path.cwd()})")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"'{path}' is not UTF-8 text ({e.reason} at byte {e.start})", str(path),
                        "save the file as UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg} at line {e.lineno}, column {e.colno}", str(path),
                        "fix the JSON syntax there") from None


def _check_entry(entry, keys, where: str, fix: str) -> None:
    if not isinstance(entry, dict):
        raise UserError(f"expected an object, got {type(entry).__name__}", where, fix)
    missing = [k for k in keys if k not in entry]
    if missing:
        raise UserError(f"missing key{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(repr(k) for k in missing)}", where, fix)
    box = entry.get("bbox")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise UserError(f"bbox must be a list of 4 numbers [x, y, w, h], got {box!r}", where,
                            "write boxes in COCO's [x, y, width, height] order")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            raise UserError(f"bbox has a value that is not a finite number: {box!r}", where,
                            "write boxes as 4 finite numbers")


def load_coco(gt_path, pred_path) -> tuple[dict, list[dict]]:
    """(ground-truth dict, detections list) from COCO-format files, validated."""
    gt = _read_json(gt_path, "ground truth")
    if not isinstance(gt, dict):
        raise UserError("the ground truth must be a JSON object", str(gt_path),
                        f"write an object with keys {', '.join(_GT_KEYS)}")
    missing = [k for k in _GT_KEYS if not isinstance(gt.get(k), list)]
    if missing:
        raise UserError(f"missing list{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                        str(gt_path), f"a COCO ground truth has lists {', '.join(_GT_KEYS)}")
    for n, im in enumerate(gt["images"]):
        _check_entry(im, ("id",), f"{gt_path}: images[{n}]", "give every image an 'id'")
    for n, cat in enumerate(gt["categories"]):
        _check_entry(cat, ("id",), f"{gt_path}: categories[{n}]", "give every category an 'id'")
    image_ids = {im["id"] for im in gt["images"]}
    cat_ids = {c["id"] for c in gt["categories"]}
    for n, ann in enumerate(gt["annotations"]):
        where = f"{gt_path}: annotations[{n}]"
        _check_entry(ann, _ANN_KEYS, where, f"an annotation has {', '.join(_ANN_KEYS)}")
        _check_known(ann, image_ids, cat_ids, where, "the ground truth's")

    dets = _read_json(pred_path, "predictions")
    if not isinstance(dets, list):
        raise UserError("the predictions must be a JSON list of detections", str(pred_path),
                        "write a list of {image_id, category_id, bbox, score} objects "
                        "(pycocotools' results format)")
    for n, det in enumerate(dets):
        where = f"{pred_path}: [{n}]"
        _check_entry(det, _DET_KEYS, where, f"a detection has {', '.join(_DET_KEYS)}")
        if not isinstance(det["score"], (int, float)) or not math.isfinite(det["score"]):
            raise UserError(f"score must be a finite number, got {det['score']!r}", where,
                            "write the detector's confidence as a number")
        _check_known(det, image_ids, cat_ids, where, f"{gt_path}'s")
    return gt, dets


def _check_known(entry: dict, image_ids: set, cat_ids: set, where: str, whose: str) -> None:
    if entry["image_id"] not in image_ids:
        raise UserError(f"image_id {entry['image_id']!r} is not in {whose} images", where,
                        "use the ids of the ground-truth file's 'images' list")
    if entry["category_id"] not in cat_ids:
        raise UserError(f"category_id {entry['category_id']!r} is not in {whose} categories",
                        where, "use the ids of the ground-truth file's 'categories' list")
