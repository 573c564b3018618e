"""COCO mAP evaluation time: nnrecipe's `coco_map` vs pycocotools' COCOeval on the same data.

Generates a seeded set of --images images (default 5,000) with 1–10 ground-truth boxes each over
--categories categories (sizes spread over COCO's small / medium / large), and exactly
--dets detections per image (default 20): jittered copies of most objects plus false positives.
Times both evaluations in this one run (no stored numbers) and prints both times, their ratio,
and the largest absolute difference between the six summary numbers and the per-class APs.

    python benchmarks/map_speed.py [--images 5000] [--dets 20] [--categories 20]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import numpy as np

from nnrecipe.metrics import coco_map

KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")


def generate(n_images: int, dets_per_image: int, n_categories: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_images)]
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(n_categories)]
    anns, dets = [], []
    for im in images:
        boxes = []
        for _ in range(rng.integers(1, 11)):
            side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, 640 - w / 2), rng.uniform(0, 480 - h / 2)
            cat = int(rng.integers(1, n_categories + 1))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": cat,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            boxes.append((x, y, w, h, cat))
        for k in range(dets_per_image):
            if k < 2 * len(boxes) and rng.random() < 0.8:
                x, y, w, h, cat = boxes[k % len(boxes)]
                j = rng.normal(0, 0.1, 4) * [w, h, w, h]
                box = [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])]
            else:
                side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
                box = [rng.uniform(0, 600), rng.uniform(0, 440), side, side]
                cat = int(rng.integers(1, n_categories + 1))
            dets.append({"image_id": im["id"], "category_id": cat, "bbox": box,
                         "score": float(rng.random())})
    return {"images": images, "annotations": anns, "categories": categories}, dets


def pycocotools_map(gt: dict, dets: list[dict]) -> tuple[np.ndarray, list[float]]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(dets)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    p = ev.eval["precision"][:, :, :, 0, -1]
    per_class = [float(np.mean(p[:, :, k][p[:, :, k] > -1])) if (p[:, :, k] > -1).any() else -1.0
                 for k in range(p.shape[2])]
    return ev.stats[:6], per_class


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=20)
    ap.add_argument("--categories", type=int, default=20)
    args = ap.parse_args()
    gt, dets = generate(args.images, args.dets, args.categories)
    print(f"{args.images} images, {len(gt['annotations'])} ground-truth boxes, "
          f"{len(dets)} detections, {args.categories} categories")

    t0 = time.perf_counter()
    ours = coco_map(gt, dets)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_stats, ref_per_class = pycocotools_map(gt, dets)
    t_ref = time.perf_counter() - t0

    diff_stats = float(np.max(np.abs(np.array([ours[k] for k in KEYS]) - ref_stats)))
    diff_class = float(np.max(np.abs(np.array(list(ours["map_per_class"].values()))
                                     - np.array(ref_per_class))))
    print(f"nnrecipe coco_map:  {t_ours:8.3f} s   (map={ours['map']:.6f})")
    print(f"pycocotools:        {t_ref:8.3f} s   (map={ref_stats[0]:.6f})")
    print(f"speed-up: {t_ref / t_ours:.1f}x")
    print(f"max |difference|: summary stats {diff_stats:.2e}, per-class AP {diff_class:.2e}")


if __name__ == "__main__":
    main()
