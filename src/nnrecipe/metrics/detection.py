"""Object-detection metrics: box formats, IoU, non-maximum suppression and COCO mAP.

Box formats (one box per row): "xyxy" = (x1, y1, x2, y2); "xywh" = (x1, y1, w, h) as in COCO;
"cxcywh" = (centre x, centre y, w, h).

- IoU(A, B) = |A ∩ B| / |A ∪ B|, with
  |A ∩ B| = max(0, min(x2) − max(x1)) · max(0, min(y2) − max(y1)) and
  |A ∪ B| = |A| + |B| − |A ∩ B| (IoU = 0 where the union is empty).
- Greedy NMS: visit boxes by decreasing score; keep a box unless its IoU with an already kept
  box of the same class is > iou_threshold.
- COCO AP (pycocotools COCOeval, iouType="bbox"), per category c, area range a, IoU threshold t
  in {.50, .55, …, .95}: within each image the detections of c (the max_dets best by score) are
  matched greedily by decreasing score, each to the unmatched ground truth with the highest
  IoU ≥ t (ties go to the later annotation; an ignored ground truth only when no regular one
  qualifies). Ground truth is ignored when it is a crowd or its "area" lies outside a; a
  detection is ignored when matched to an ignored ground truth, or unmatched with w·h outside a.
  Pooling all images' detections by decreasing score, recall_n = TP_n / G and
  precision_n = TP_n / (TP_n + FP_n) (G = non-ignored ground truths), precision is made
  monotone (p_n ← max_{m ≥ n} p_m), and AP = mean over the 101 recall levels
  r ∈ {0, .01, …, 1} of the precision at the first n with recall_n ≥ r (0 when recall never
  reaches r).
  mAP = mean of AP over thresholds and categories, skipping categories with no non-ignored
  ground truth in a (those read −1, as in COCO); AP50 / AP75 use one threshold;
  small / medium / large: areas [0, 32²], [32², 96²], [96², 1e10] (bounds inclusive, as COCO).
  Crowd annotations (iscrowd=1) are ignore regions: IoU against them is |A ∩ B| / |detection|,
  and they may absorb any number of detections.

Hand-written rather than calling pycocotools: these are pure functions with no C extension to
build at run time, and the COCO matching is vectorized over images, categories, area ranges and
thresholds at once (a loop over detection rank only), which evaluates 5,000 images × 20
detections in about a second where pycocotools' per-image Python loops take far longer.
The tests compare every summary number with pycocotools to 1e-6.
"""

from __future__ import annotations

import numpy as np
import torch

_FORMATS = ("xyxy", "xywh", "cxcywh")
# pycocotools' exact expressions, so thresholds agree bit for bit
IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_LEVELS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2),
               "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e5 ** 2)}


def _as_boxes(boxes) -> torch.Tensor:
    b = torch.as_tensor(boxes)
    if not b.is_floating_point():
        b = b.to(torch.float32)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {tuple(b.shape)}")
    return b


def box_convert(boxes, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """Convert [N, 4] boxes between "xyxy", "xywh" and "cxcywh"."""
    for fmt in (in_fmt, out_fmt):
        if fmt not in _FORMATS:
            raise ValueError(f"unknown box format {fmt!r}; use one of {_FORMATS}")
    b = _as_boxes(boxes)
    if in_fmt == out_fmt:
        return b.clone()
    a, c, d, e = b.unbind(1)
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, c, a + d, c + e
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - d / 2, c - e / 2, a + d / 2, c + e / 2
    else:
        x1, y1, x2, y2 = a, c, d, e
    if out_fmt == "xyxy":
        return torch.stack([x1, y1, x2, y2], 1)
    if out_fmt == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], 1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)


def box_iou(a, b, fmt: str = "xyxy") -> torch.Tensor:
    """[N, M] IoU between every box of a [N, 4] and of b [M, 4] (0 where the union is empty)."""
    a, b = box_convert(a, fmt, "xyxy"), box_convert(b, fmt, "xyxy")
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    w = (torch.minimum(a[:, None, 2], b[None, :, 2]) - torch.maximum(a[:, None, 0], b[None, :, 0]))
    h = (torch.minimum(a[:, None, 3], b[None, :, 3]) - torch.maximum(a[:, None, 1], b[None, :, 1]))
    inter = w.clamp(min=0) * h.clamp(min=0)
    union = area_a[:, None] + area_b[None, :] - inter
    # degenerate boxes (zero area on both sides) overlap nothing rather than giving 0/0
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny),
                       torch.zeros_like(inter))


def nms(boxes, scores, iou_threshold: float = 0.5, classes=None, *, fmt: str = "xyxy"):
    """Indices of the boxes kept by greedy NMS, by decreasing score (ties: lower index first).
    With `classes`, boxes of different classes never suppress each other."""
    b = _as_boxes(boxes)
    s = torch.as_tensor(scores).reshape(-1)
    if s.numel() != b.shape[0]:
        raise ValueError(f"{b.shape[0]} boxes but {s.numel()} scores")
    order = torch.argsort(s, descending=True, stable=True)
    suppress = box_iou(b[order], b[order], fmt) > iou_threshold
    if classes is not None:
        c = torch.as_tensor(classes).reshape(-1)[order]
        suppress &= c[:, None] == c[None, :]
    # the greedy pass is sequential by nature; numpy keeps its per-row cost small
    suppress = suppress.cpu().numpy()
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1:] &= ~suppress[i, i + 1:]
    return order[torch.from_numpy(keep).to(order.device)]


def _coco_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """[..., D, G] IoU of xywh boxes dt [..., D, 4] and gt [..., G, 4], written as
    pycocotools' bbIou (float64, same operation order) so ties and thresholds agree exactly."""
    d, g = dt[..., :, None, :], gt[..., None, :, :]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    inter = w * h
    da, ga = d[..., 2] * d[..., 3], g[..., 2] * g[..., 3]
    union = np.where(crowd[..., None, :], da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((w > 0) & (h > 0), iou, 0.0)


def _last_argmax(x: np.ndarray) -> np.ndarray:
    """Index of the last maximum along the last axis (pycocotools' `<` lets later ties win)."""
    n = x.shape[-1]
    return n - 1 - np.argmax(x[..., ::-1], axis=-1)


def _match_chunk(dt_box, dt_area, n_dt, gt_box, gt_area, gt_crowd, n_gt):
    """Greedy matching for a chunk of (image, category) groups, padded to [C, D] detections
    (sorted by score) and [C, G] ground truths. Returns (matched, ignored), each [C, A, T, D]."""
    C, D = dt_area.shape
    G = gt_area.shape[1]
    lo = np.array([r[0] for r in AREA_RANGES.values()])[None, :, None]
    hi = np.array([r[1] for r in AREA_RANGES.values()])[None, :, None]
    valid_gt = np.arange(G)[None, :] < n_gt[:, None]                        # [C, G]
    gt_ig = gt_crowd[:, None, :] | (gt_area[:, None, :] < lo) | (gt_area[:, None, :] > hi)
    gt_ig = gt_ig[:, :, None, :]                                             # [C, A, 1, G]
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None]         # [1, 1, T, 1]
    ious = _coco_iou(dt_box, gt_box, gt_crowd)                               # [C, D, G]
    A, T = len(AREA_RANGES), len(IOU_THRESHOLDS)
    taken = np.zeros((C, A, T, G), dtype=bool)
    matched = np.zeros((C, A, T, D), dtype=bool)
    ignored = np.zeros((C, A, T, D), dtype=bool)
    rows = np.arange(C)[:, None, None]
    for r in range(D):
        iou = ious[:, r, :][:, None, None, :]                               # [C, 1, 1, G]
        ok = valid_gt[:, None, None, :] & (~taken | gt_crowd[:, None, None, :]) & (iou >= thr)
        ok &= (r < n_dt)[:, None, None, None]
        regular, crowd_or_out = ok & ~gt_ig, ok & gt_ig
        has_reg, has_ig = regular.any(-1), crowd_or_out.any(-1)
        best_reg = _last_argmax(np.where(regular, iou, -1.0))
        best_ig = _last_argmax(np.where(crowd_or_out, iou, -1.0))
        m = np.where(has_reg, best_reg, best_ig)                             # [C, A, T]
        hit = has_reg | has_ig
        a_idx, t_idx = np.arange(A)[None, :, None], np.arange(T)[None, None, :]
        taken[rows, a_idx, t_idx, m] |= hit
        matched[:, :, :, r] = hit
        ignored[:, :, :, r] = hit & ~has_reg
    outside = (dt_area[:, None, :] < lo) | (dt_area[:, None, :] > hi)       # [C, A, D]
    ignored |= ~matched & outside[:, :, None, :]
    return matched, ignored


def _pad(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, width: int, fill):
    out = np.full((len(starts), width) + values.shape[1:], fill, dtype=values.dtype)
    rows, cols = _runs(counts)
    out[rows, cols] = values[starts[rows] + cols]
    return out


def _runs(counts: np.ndarray):
    """(group, position within group) for each element of runs of the given lengths."""
    rows = np.repeat(np.arange(len(counts)), counts)
    return rows, np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _group_runs(keys: np.ndarray, groups: np.ndarray):
    """(start, count) of each group's run in `keys` (sorted)."""
    starts = np.searchsorted(keys, groups, side="left")
    return starts, np.searchsorted(keys, groups, side="right") - starts


def _chunks(gn: np.ndarray, dn: np.ndarray, budget: int = 1 << 15):
    """Group indices in chunks of similar sizes, each padded to at most ~budget (group, det,
    ground truth) cells, so a few crowded images do not inflate the padding of all others."""
    order = np.lexsort((dn, gn))
    start, width_g, width_d = 0, 1, 1
    for n, i in enumerate(order):
        width_g, width_d = max(width_g, int(gn[i])), max(width_d, int(dn[i]))
        if (n + 1 - start) * width_g * width_d > budget and n > start:
            yield order[start:n]
            start, width_g, width_d = n, max(1, int(gn[i])), max(1, int(dn[i]))
    if start < len(order):
        yield order[start:]


def _ap_table(gt: dict, detections: list[dict], max_dets: int):
    """Precision table [T, R, K, A] as pycocotools' eval["precision"][..., maxDets=max_dets]."""
    img_ids = sorted(im["id"] for im in gt["images"])
    cat_ids = sorted(c["id"] for c in gt["categories"])
    img_index = {i: n for n, i in enumerate(img_ids)}
    cat_index = {c: n for n, c in enumerate(cat_ids)}
    K, I = len(cat_ids), len(img_ids)
    anns = gt["annotations"]
    for name, items, index in (("image_id", detections, img_index),
                               ("category_id", detections, cat_index),
                               ("image_id", anns, img_index), ("category_id", anns, cat_index)):
        unknown = {o[name] for o in items} - index.keys()
        if unknown:
            raise ValueError(f"{name} {sorted(unknown)[:5]} not in the ground truth's list")

    # ground truths, grouped by (category, image) and kept in file order within a group
    g_key = np.array([cat_index[a["category_id"]] * I + img_index[a["image_id"]] for a in anns],
                     dtype=np.int64)
    g_box = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    g_area = np.array([a["area"] for a in anns], dtype=np.float64)
    g_crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    order = np.argsort(g_key, kind="stable")
    g_key, g_box, g_area, g_crowd = g_key[order], g_box[order], g_area[order], g_crowd[order]

    # detections, grouped likewise, by decreasing score (stable), the best max_dets per group
    d_key = np.array([cat_index[d["category_id"]] * I + img_index[d["image_id"]]
                      for d in detections], dtype=np.int64)
    d_box = np.array([d["bbox"] for d in detections], dtype=np.float64).reshape(-1, 4)
    d_score = np.array([d["score"] for d in detections], dtype=np.float64)
    order = np.lexsort((-d_score, d_key))
    d_key, d_box, d_score = d_key[order], d_box[order], d_score[order]
    starts, _ = _group_runs(d_key, d_key)
    keep = np.arange(len(d_key)) - starts < max_dets
    d_key, d_box, d_score = d_key[keep], d_box[keep], d_score[keep]
    d_area = d_box[:, 2] * d_box[:, 3]

    groups = np.union1d(g_key, d_key)
    gs, gn = _group_runs(g_key, groups)
    ds, dn = _group_runs(d_key, groups)
    A, T, Dn = len(AREA_RANGES), len(IOU_THRESHOLDS), len(d_key)
    matched = np.zeros((A, T, Dn), dtype=bool)
    ignored = np.zeros((A, T, Dn), dtype=bool)
    for chunk in _chunks(gn, dn):
        if len(chunk) == 0 or dn[chunk].max() == 0:
            continue
        D, G = int(dn[chunk].max()), max(1, int(gn[chunk].max()))
        m, ig = _match_chunk(
            _pad(d_box, ds[chunk], dn[chunk], D, 0.0), _pad(d_area, ds[chunk], dn[chunk], D, 0.0),
            dn[chunk], _pad(g_box, gs[chunk], gn[chunk], G, 0.0),
            _pad(g_area, gs[chunk], gn[chunk], G, 0.0),
            _pad(g_crowd, gs[chunk], gn[chunk], G, False), gn[chunk])
        rows, cols = _runs(dn[chunk])
        flat = ds[chunk][rows] + cols
        matched[:, :, flat] = m[rows, :, :, cols].transpose(1, 2, 0)
        ignored[:, :, flat] = ig[rows, :, :, cols].transpose(1, 2, 0)

    precision = -np.ones((T, len(RECALL_LEVELS), K, A))
    lo = np.array([r[0] for r in AREA_RANGES.values()])[:, None]
    hi = np.array([r[1] for r in AREA_RANGES.values()])[:, None]
    g_cat, d_cat, group_cat = g_key // I, d_key // I, groups // I
    for k in range(K):
        if not (group_cat == k).any():
            continue
        in_k = g_cat == k
        n_pos = ((~g_crowd[in_k] & (g_area[in_k] >= lo) & (g_area[in_k] <= hi))).sum(1)  # [A]
        sel = np.flatnonzero(d_cat == k)
        # detections are already in (image, score) order: a stable sort by score pools them
        # exactly as pycocotools concatenates images before its mergesort
        sel = sel[np.argsort(-d_score[sel], kind="stable")]
        tp = np.cumsum(matched[:, :, sel] & ~ignored[:, :, sel], axis=-1).astype(float)
        fp = np.cumsum(~matched[:, :, sel] & ~ignored[:, :, sel], axis=-1).astype(float)
        for a in range(A):
            if n_pos[a] == 0:
                continue
            rc = tp[a] / n_pos[a]
            pr = tp[a] / (fp[a] + tp[a] + np.spacing(1))
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(T):
                idx = np.searchsorted(rc[t], RECALL_LEVELS, side="left")
                q = np.zeros(len(RECALL_LEVELS))
                inside = idx < len(sel)
                q[inside] = pr[t, idx[inside]]
                precision[t, :, k, a] = q
    return precision, cat_ids


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def coco_map(gt: dict, detections: list[dict], *, max_dets: int = 100) -> dict:
    """COCO bbox metrics of `detections` ({image_id, category_id, bbox [x, y, w, h], score})
    against the COCO ground-truth dict `gt` (images, annotations with bbox, area, category_id,
    optional iscrowd; categories). Returns map, map_50, map_75, map_small, map_medium,
    map_large (pycocotools' stats[0:6] for maxDets=max_dets) and map_per_class
    {category_id: AP}; −1 where no ground truth counts (as COCO)."""
    precision, cat_ids = _ap_table(gt, detections, max_dets)
    names = list(AREA_RANGES)
    return {
        "map": _mean_valid(precision[:, :, :, 0]),
        "map_50": _mean_valid(precision[0, :, :, 0]),
        "map_75": _mean_valid(precision[5, :, :, 0]),
        "map_small": _mean_valid(precision[:, :, :, names.index("small")]),
        "map_medium": _mean_valid(precision[:, :, :, names.index("medium")]),
        "map_large": _mean_valid(precision[:, :, :, names.index("large")]),
        "map_per_class": {c: _mean_valid(precision[:, :, k, 0]) for k, c in enumerate(cat_ids)},
    }
