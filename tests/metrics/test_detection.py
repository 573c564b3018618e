"""Box conversion, IoU and NMS against hand computations and brute-force loops; COCO mAP against
pycocotools' COCOeval on seeded generated ground truth / detection sets."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
import torch

from nnrecipe.metrics import box_convert, box_iou, coco_map, nms

FORMATS = ("xyxy", "xywh", "cxcywh")
SUMMARY = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")


def _random_xyxy(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 100
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 40 + 1
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_round_trip(in_fmt, out_fmt):
    boxes = box_convert(_random_xyxy(50, 0), "xyxy", in_fmt)
    back = box_convert(box_convert(boxes, in_fmt, out_fmt), out_fmt, in_fmt)
    torch.testing.assert_close(back, boxes)


def test_box_convert_by_hand():
    xywh = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert box_convert(xywh, "xywh", "xyxy").tolist() == [[1.0, 2.0, 4.0, 6.0]]
    assert box_convert(xywh, "xywh", "cxcywh").tolist() == [[2.5, 4.0, 3.0, 4.0]]
    assert box_convert([[2.5, 4.0, 3.0, 4.0]], "cxcywh", "xywh").tolist() == xywh.tolist()
    with pytest.raises(ValueError, match="unknown box format"):
        box_convert(xywh, "xywh", "yxyx")
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        box_convert(np.zeros((2, 3)), "xyxy", "xywh")


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0],
                      [2.0, 0.0, 4.0, 2.0], [0.0, 0.0, 1.0, 2.0]])
    # overlaps 1 of union 4 + 4 - 1; identical; disjoint; touching edge; half inside
    expected = torch.tensor([[1 / 7, 1.0, 0.0, 0.0, 0.5]])
    torch.testing.assert_close(box_iou(a, b), expected)
    # the same boxes given as xywh
    torch.testing.assert_close(box_iou([[0, 0, 2, 2]], [[1, 1, 2, 2]], fmt="xywh"),
                               torch.tensor([[1 / 7]]))


def _brute_iou(a, b):
    out = torch.zeros(len(a), len(b), dtype=torch.float64)
    for i, (ax1, ay1, ax2, ay2) in enumerate(a.tolist()):
        for j, (bx1, by1, bx2, by2) in enumerate(b.tolist()):
            iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            ih = max(0.0, min(ay2, by2) - max(ay1, by1))
            inter = iw * ih
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            out[i, j] = inter / union
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_iou_matches_brute_force(fmt):
    a, b = _random_xyxy(30, 1), _random_xyxy(20, 2)
    got = box_iou(box_convert(a, "xyxy", fmt), box_convert(b, "xyxy", fmt), fmt=fmt)
    torch.testing.assert_close(got, _brute_iou(a, b))
    assert (got > 0).any() and (got == 0).any()  # the data exercises both cases


def _brute_nms(boxes, scores, thr, classes=None):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    iou = _brute_iou(boxes, boxes)
    kept = []
    for i in order:
        if all(iou[i, j] <= thr or (classes is not None and classes[i] != classes[j])
               for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force(thr):
    # clustered boxes so that suppression happens a lot
    g = torch.Generator().manual_seed(3)
    centres = torch.rand(8, 2, generator=g, dtype=torch.float64) * 100
    xy = centres[torch.randint(0, 8, (120,), generator=g)] + torch.randn(120, 2, generator=g) * 4
    wh = 20 + torch.randn(120, 2, generator=g, dtype=torch.float64) * 3
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(120, generator=g)
    classes = torch.randint(0, 3, (120,), generator=g)
    kept = nms(boxes, scores, thr)
    assert kept.tolist() == _brute_nms(boxes, scores, thr)
    assert 8 <= len(kept) < 100
    per_class = nms(boxes, scores, thr, classes=classes)
    assert per_class.tolist() == _brute_nms(boxes, scores, thr, classes.tolist())
    assert len(per_class) > len(kept)
    # kept indices come by decreasing score
    assert (torch.diff(scores[per_class]) <= 0).all()
    # each class on its own gives the same boxes as the per-class call
    alone = sorted(i for c in range(3) for i in
                   torch.nonzero(classes == c).reshape(-1)[
                       nms(boxes[classes == c], scores[classes == c], thr)].tolist())
    assert alone == sorted(per_class.tolist())


def test_nms_classes_never_suppress_each_other():
    boxes = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]]
    scores = [0.5, 0.9, 0.7]
    assert nms(boxes, scores).tolist() == [1]
    assert nms(boxes, scores, classes=[0, 1, 1]).tolist() == [1, 0]
    # IoU of box 2 with box 1 is 0.81: kept only when the threshold is above it
    assert nms(boxes, scores, iou_threshold=0.85).tolist() == [1, 2]


# --- COCO mAP ------------------------------------------------------------------------------


def _generate(seed: int, *, n_images=40, crowd=False, tied_scores=False, dets_per_object=2):
    """Jittered ground-truth copies over small/medium/large sizes, missed objects, false
    positives, images without ground truth; category 4 has ground truth but no detections,
    category 5 has neither (reads -1)."""
    rng = np.random.default_rng(seed)
    images = [{"id": 100 + 7 * i, "width": 640, "height": 480} for i in range(n_images)]
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 4, 5)]
    anns, dets = [], []

    def score():
        return float(np.round(rng.random(), 1)) if tied_scores else float(rng.random())

    for im in images:
        n_obj = 0 if rng.random() < 0.15 else int(rng.integers(1, 7))
        for _ in range(n_obj):
            cat = int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1]))
            side = float(np.exp(rng.uniform(np.log(8), np.log(250))))
            w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, 400), rng.uniform(0, 300)
            is_crowd = int(crowd and rng.random() < 0.1)
            # "area" is a mask area in COCO, smaller than the box
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": cat,
                         "bbox": [x, y, w, h], "area": w * h * rng.uniform(0.6, 1.0),
                         "iscrowd": is_crowd})
            if cat == 4 or rng.random() < 0.2:  # missed
                continue
            for _ in range(int(rng.integers(1, dets_per_object + 1))):
                j = rng.normal(0, 0.12, 4) * [w, h, w, h]
                det_cat = cat if rng.random() < 0.9 else int(rng.integers(1, 4))
                dets.append({"image_id": im["id"], "category_id": det_cat,
                             "bbox": [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])],
                             "score": score()})
        for _ in range(int(rng.integers(0, 4))):  # false positives
            side = float(np.exp(rng.uniform(np.log(8), np.log(250))))
            dets.append({"image_id": im["id"], "category_id": int(rng.integers(1, 4)),
                         "bbox": [rng.uniform(0, 400), rng.uniform(0, 300), side, side],
                         "score": score()})
    return {"images": images, "annotations": anns, "categories": cats}, dets


def _oracle(gt, dets, max_dets=(1, 10, 100)):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(dets)), "bbox")
        ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        if max_dets[-1] == 100:
            ev.summarize()
    return ev


def _mean_valid(p):
    return float(np.mean(p[p > -1])) if (p > -1).any() else -1.0


def _from_precision(ev):
    """The six summary numbers and per-class AP from COCOeval's precision table (last maxDets),
    as COCOeval.summarize averages it."""
    p = ev.eval["precision"][..., -1]  # [T, R, K, A]
    summary = [_mean_valid(p[:, :, :, 0]), _mean_valid(p[0, :, :, 0]), _mean_valid(p[5, :, :, 0]),
               _mean_valid(p[:, :, :, 1]), _mean_valid(p[:, :, :, 2]), _mean_valid(p[:, :, :, 3])]
    per_class = {c: _mean_valid(p[:, :, k, 0]) for k, c in enumerate(ev.params.catIds)}
    return summary, per_class


@pytest.mark.parametrize("seed,options", [
    (0, {}), (1, {}), (2, {"crowd": True}), (3, {"tied_scores": True}),
    (4, {"crowd": True, "tied_scores": True, "dets_per_object": 3}),
    (6, {"n_images": 400, "crowd": True}),  # large enough to be matched in several chunks
])
def test_coco_map_matches_pycocotools(seed, options):
    gt, dets = _generate(seed, **options)
    ev = _oracle(gt, dets)
    got = coco_map(gt, dets)
    np.testing.assert_allclose([got[k] for k in SUMMARY], ev.stats[:6], rtol=0, atol=1e-6)
    summary, per_class = _from_precision(ev)
    np.testing.assert_allclose([got[k] for k in SUMMARY], summary, rtol=0, atol=1e-6)
    assert got["map_per_class"].keys() == per_class.keys()
    np.testing.assert_allclose(list(got["map_per_class"].values()), list(per_class.values()),
                               rtol=0, atol=1e-6)
    # the generated data reaches every case: a category without detections scores 0, one
    # without ground truth reads -1, and the size ranges all hold ground truth
    assert got["map_per_class"][4] == 0.0 and got["map_per_class"][5] == -1.0
    assert 0.05 < got["map"] < 0.9 and min(got[k] for k in SUMMARY) >= 0


def test_coco_map_max_dets_matches_pycocotools():
    gt, dets = _generate(5, dets_per_object=4)  # many images hold more than 5 detections
    ev = _oracle(gt, dets, max_dets=(1, 3, 5))
    got = coco_map(gt, dets, max_dets=5)
    summary, per_class = _from_precision(ev)
    np.testing.assert_allclose([got[k] for k in SUMMARY], summary, rtol=0, atol=1e-6)
    np.testing.assert_allclose(list(got["map_per_class"].values()), list(per_class.values()),
                               rtol=0, atol=1e-6)
    assert got["map"] != coco_map(gt, dets)["map"]


def test_coco_map_by_hand():
    # one category, two objects; detections: a hit (0.9), a false positive (0.8), a hit (0.7).
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> made monotone: 1, 2/3, 2/3; the 51 recall
    # levels 0..0.50 read 1 and the 50 levels 0.51..1 read 2/3, at every IoU threshold.
    gt = {"images": [{"id": 1}], "categories": [{"id": 7}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 10, 10],
                           "area": 100.0},
                          {"id": 2, "image_id": 1, "category_id": 7, "bbox": [50, 50, 40, 40],
                           "area": 1600.0}]}
    dets = [{"image_id": 1, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 0.9},
            {"image_id": 1, "category_id": 7, "bbox": [200, 200, 5, 5], "score": 0.8},
            {"image_id": 1, "category_id": 7, "bbox": [50, 50, 40, 40], "score": 0.7}]
    got = coco_map(gt, dets)
    expected = (51 * 1 + 50 * 2 / 3) / 101
    assert got["map"] == pytest.approx(expected, abs=1e-12)
    assert got["map_50"] == got["map_75"] == pytest.approx(expected, abs=1e-12)
    assert got["map_per_class"] == {7: pytest.approx(expected, abs=1e-12)}
    # small: only the 10x10 object counts; its hit comes first -> AP 1 (the 5x5 false
    # positive is small too, but ranks after the hit); medium: FP is outside the range and
    # unmatched so ignored, the 40x40 hit comes after the ignored small hit -> AP 1
    assert got["map_small"] == pytest.approx(1.0) and got["map_medium"] == pytest.approx(1.0)
    assert got["map_large"] == -1.0
    assert coco_map(gt, [])["map"] == 0.0


def test_coco_map_iou_tie_goes_to_the_later_annotation():
    # the first detection overlaps both objects with the same IoU 90/110; as in pycocotools it
    # takes the later one (B), so the second detection, exactly on B, can only take A (IoU 2/3)
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
                           "area": 100.0, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 0, 10, 10],
                           "area": 100.0, "iscrowd": 0}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [2, 0, 10, 10], "score": 0.8}]
    # t ≤ .65: both hit (AP 1); t in .70–.80: hit then miss (AP 51/101); t ≥ .85: the first
    # misses and the second hits B (precision 1/2 up to recall 1/2: AP 25.5/101)
    expected = (4 * 1 + 3 * 51 / 101 + 3 * 25.5 / 101) / 10
    got = coco_map(gt, dets)
    assert got["map"] == pytest.approx(expected, abs=1e-12)
    assert got["map"] == pytest.approx(_oracle(gt, dets).stats[0], abs=1e-12)


def test_coco_map_rejects_unknown_ids():
    gt, dets = _generate(0, n_images=3)
    with pytest.raises(ValueError, match="image_id"):
        coco_map(gt, dets + [{"image_id": 99999, "category_id": 1, "bbox": [0, 0, 1, 1],
                              "score": 0.5}])
    with pytest.raises(ValueError, match="category_id"):
        coco_map(gt, dets + [{"image_id": 100, "category_id": 42, "bbox": [0, 0, 1, 1],
                              "score": 0.5}])
