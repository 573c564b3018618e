"""load_coco: a valid pair loads and evaluates; each kind of bad file is a UserError naming it."""

from __future__ import annotations

import json

import pytest

from nnrecipe.data.coco import load_coco
from nnrecipe.errors import UserError
from nnrecipe.metrics import coco_map


def _gt():
    return {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 3, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10],
                             "area": 100.0, "iscrowd": 0}]}


def _dets():
    return [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.9},
            {"image_id": 2, "category_id": 3, "bbox": [5, 5, 10, 10], "score": 0.4}]


def _write(tmp_path, gt=None, dets=None):
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(_gt() if gt is None else gt))
    pred_path.write_text(json.dumps(_dets() if dets is None else dets))
    return gt_path, pred_path


def test_loads_a_valid_pair(tmp_path):
    gt, dets = load_coco(*_write(tmp_path))
    assert gt == _gt() and dets == _dets()
    assert coco_map(gt, dets)["map"] == pytest.approx(1.0)


def test_missing_file(tmp_path):
    gt_path, _ = _write(tmp_path)
    with pytest.raises(UserError, match="predictions file not found") as e:
        load_coco(gt_path, tmp_path / "nope.json")
    assert "nope.json" in e.value.what
    with pytest.raises(UserError, match="ground truth file not found"):
        load_coco(tmp_path / "missing.json", gt_path)


def test_invalid_json(tmp_path):
    gt_path, pred_path = _write(tmp_path)
    pred_path.write_text('[{"image_id": 1,')
    with pytest.raises(UserError, match="invalid JSON") as e:
        load_coco(gt_path, pred_path)
    assert e.value.where == str(pred_path) and "line 1" in e.value.what


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_ground_truth_list(tmp_path, key):
    gt = _gt()
    del gt[key]
    with pytest.raises(UserError, match=f"missing list {key}"):
        load_coco(*_write(tmp_path, gt=gt))


def test_annotation_missing_key(tmp_path):
    gt = _gt()
    del gt["annotations"][0]["area"]
    with pytest.raises(UserError, match="missing key 'area'") as e:
        load_coco(*_write(tmp_path, gt=gt))
    assert "annotations[0]" in e.value.where


@pytest.mark.parametrize("key", ["image_id", "category_id", "bbox", "score"])
def test_detection_missing_key(tmp_path, key):
    dets = _dets()
    del dets[1][key]
    with pytest.raises(UserError, match=f"missing key '{key}'") as e:
        load_coco(*_write(tmp_path, dets=dets))
    assert e.value.where.endswith("[1]")


@pytest.mark.parametrize("bbox", [[0, 0, 10], [0, 0, 10, 10, 1], "0 0 10 10", [0, 0, "a", 1]])
def test_bad_bbox(tmp_path, bbox):
    dets = _dets()
    dets[0]["bbox"] = bbox
    with pytest.raises(UserError, match="bbox"):
        load_coco(*_write(tmp_path, dets=dets))
    gt = _gt()
    gt["annotations"][0]["bbox"] = bbox
    with pytest.raises(UserError, match="bbox"):
        load_coco(*_write(tmp_path, gt=gt))


def test_unknown_ids_in_predictions(tmp_path):
    dets = _dets()
    dets[1]["image_id"] = 99
    with pytest.raises(UserError, match="image_id 99 is not in"):
        load_coco(*_write(tmp_path, dets=dets))
    dets = _dets()
    dets[0]["category_id"] = 4
    with pytest.raises(UserError, match="category_id 4 is not in") as e:
        load_coco(*_write(tmp_path, dets=dets))
    assert "categories" in e.value.fix


def test_wrong_top_level_types(tmp_path):
    with pytest.raises(UserError, match="must be a JSON list"):
        load_coco(*_write(tmp_path, dets={"annotations": _dets()}))
    with pytest.raises(UserError, match="must be a JSON object"):
        load_coco(*_write(tmp_path, gt=[_gt()]))
    with pytest.raises(UserError, match="score must be a finite number"):
        load_coco(*_write(tmp_path, dets=[dict(_dets()[0], score="high")]))
