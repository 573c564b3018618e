"""`nnrecipe evaluate --task detection`: COCO JSON files in, the mAP block out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnrecipe.cli import main
from nnrecipe.metrics import coco_map


def _files(tmp_path):
    rng = np.random.default_rng(0)
    images = [{"id": i, "width": 200, "height": 200} for i in range(1, 21)]
    anns, dets, k = [], [], 1
    for img in images:
        for _ in range(3):
            x, y, w, h = (float(v) for v in rng.uniform([0, 0, 10, 10], [150, 150, 60, 60]))
            cat = int(rng.integers(1, 3))
            anns.append({"id": k, "image_id": img["id"], "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
            k += 1
            jitter = rng.normal(0, 3, size=4)
            dets.append({"image_id": img["id"], "category_id": cat, "score": float(rng.uniform(0.3, 1)),
                         "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1), max(h + jitter[3], 1)]})
        dets.append({"image_id": img["id"], "category_id": 1, "score": 0.2, "bbox": [5.0, 5.0, 20.0, 20.0]})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(dets))
    return gt, dets, gt_path, pred_path


def test_evaluate_detection_writes_the_coco_block(tmp_path, capsys):
    gt, dets, gt_path, pred_path = _files(tmp_path)
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--task", "detection", "--gt", str(gt_path), "--pred", str(pred_path),
                 "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert set(written) == {"map", "map_50", "map_75", "map_small", "map_medium", "map_large", "map_per_class"}
    direct = coco_map(gt, dets)
    assert written["map"] == pytest.approx(direct["map"], abs=1e-12)
    assert written["map_per_class"] == {str(k): v for k, v in direct["map_per_class"].items()}
    assert 0 < written["map"] < 1 and written["map_50"] >= written["map_75"]
    assert json.loads(capsys.readouterr().out)["map"] == written["map"]


@pytest.mark.parametrize("argv,needle", [
    (["evaluate", "--task", "detection", "--gt", "gt.json"], "--pred"),
    (["evaluate", "--task", "detection", "--gt", "nosuch.json", "--pred", "nosuch2.json"], "nosuch"),
    (["evaluate"], "RUN_DIR"),
])
def test_evaluate_bad_input_is_one_clean_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and needle in err
