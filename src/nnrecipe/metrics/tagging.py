"""Sequence-tagging metrics: per-tag F1 over tokens and entity-level P/R/F1 over BIO spans.

Token level (tags as ids per token, pad positions already left out): the per-tag precision,
recall and F1 of `nnrecipe.metrics.classification` on the flattened tokens, and their macro mean
over the tags that occur in the gold or the predicted tags (sklearn's ``f1_score(average="macro")``
label set).

Entity level (conlleval; Tjong Kim Sang & De Meulder 2003). The chunks of a BIO sequence: a chunk
of type X starts at ``B-X``, or at ``I-X`` when the previous tag is ``O`` or of another type (an
``I-`` without its ``B-`` opens a chunk, as conlleval and seqeval's default mode read it); it ends
before the next tag that is not ``I-X``. Chunks never cross sentences. With G the gold chunks and
P the predicted ones, as (sentence, type, start, end) tuples,

    precision = |G ∩ P| / |P|,  recall = |G ∩ P| / |G|,  F1 = 2·precision·recall / (precision + recall)

micro-averaged over all chunks, and per type on that type's chunks (0/0 is 0). tests/metrics
checks them against seqeval (a test dependency only) on random and crafted sequences.

Hand-written because seqeval would be a run-time dependency for a loop of a dozen lines, and it
reads any tag as BIO (``PER`` becomes the chunk type ``ER``); `is_bio` says when the tags are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from nnrecipe.metrics.classification import per_class_table

_BIO = re.compile(r"^(O|[BI]-.+)$")


def is_bio(tags: Sequence[str]) -> bool:
    """Every tag is ``O``, ``B-TYPE`` or ``I-TYPE`` (and at least one is not ``O``)."""
    return bool(tags) and all(_BIO.match(t) for t in tags) and any(t != "O" for t in tags)


def bio_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) of each chunk of one sentence's BIO tags, in order (module docstring)."""
    chunks: list[tuple[str, int, int]] = []
    kind, start = None, 0  # the open chunk's type (None: none open)
    for i, tag in enumerate([*tags, "O"]):
        prefix, tag_type = tag[:1], tag[2:]
        continues = prefix == "I" and tag_type == kind
        if kind is not None and not continues:
            chunks.append((kind, start, i - 1))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = tag_type, i
    return chunks


def _prf(hits: int, predicted: int, gold: int) -> dict:
    p = hits / predicted if predicted else 0.0
    r = hits / gold if gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro precision/recall/F1 over the chunks of all sentences, and per type
    ({"precision", "recall", "f1", "support"}, support = gold chunks of the type)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    g, p = set(), set()
    for s, (gt, pt) in enumerate(zip(gold, predicted)):
        if len(gt) != len(pt):
            raise ValueError(f"sentence {s}: {len(gt)} gold tags but {len(pt)} predicted")
        g |= {(s, *c) for c in bio_chunks(gt)}
        p |= {(s, *c) for c in bio_chunks(pt)}
    types = sorted({c[1] for c in g | p})
    per_type = {t: {**_prf(sum(c[1] == t for c in g & p), sum(c[1] == t for c in p), sum(c[1] == t for c in g)),
                    "support": sum(c[1] == t for c in g)} for t in types}
    return {**_prf(len(g & p), len(p), len(g)), "chunks": len(g), "predicted_chunks": len(p), "per_type": per_type}


def tag_scores(y_true, y_pred, tag_names: list[str]) -> dict:
    """Per-tag table and macro F1 for tag indices 0..K−1 (flattened tokens, no padding)."""
    yt, yp = torch.as_tensor(y_true).reshape(-1).long(), torch.as_tensor(y_pred).reshape(-1).long()
    rows = per_class_table(yt, yp, len(tag_names), tag_names)
    seen = set(yt.tolist()) | set(yp.tolist())
    present = [rows[k] for k in range(len(tag_names)) if k in seen]
    return {"f1_macro": sum(r["f1"] for r in present) / len(present), "per_tag": rows}


__all__ = ["bio_chunks", "entity_scores", "is_bio", "tag_scores"]
