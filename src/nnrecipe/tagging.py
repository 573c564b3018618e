"""A tagger's metrics on a split, and using a trained tagging run: predict and evaluate.

Prediction: the tag of token t is argmax over the real tags of the logits z_t (the padding id 0
is never predicted). Metrics on the tagged tokens M (padding left out), with `nnrecipe.metrics`:

- token accuracy (1/|M|) Σ_M [ŷ_t = y_t]; loss = mean token cross-entropy −log softmax(z_t)[y_t]
- per-tag precision/recall/F1, their macro mean ``f1_macro`` and the tag confusion matrix
- for BIO tags, entity precision/recall/F1 over chunks (conlleval, = seqeval's default mode)

`tag_sentences(run, sentences)` is the API: token lists in, tag lists out. `predict_tags` writes
CSV ``tokens,tags`` (one sentence per row, space-separated: itself a tagging CSV), from a CSV's
tokens column, a .conll file or one sentence per line; `evaluate_tags` scores a labelled CSV or
CoNLL file with fit's own encoding and metrics, so the test split written out reproduces
metrics.json's "test" block.
"""

from __future__ import annotations

import csv
import io

import torch
import torch.nn.functional as F

from nnrecipe.data import PAD, Vocab
from nnrecipe.data.tagged_text import Tagged, read_labelled, read_unlabelled
from nnrecipe.errors import UserError
from nnrecipe.metrics import confusion_matrix, token_accuracy
from nnrecipe.metrics.tagging import entity_scores, tag_scores
from nnrecipe.run import Run
from nnrecipe.tagging_data import encode
from nnrecipe.training.loop import predict_logits

EXAMPLES = 5


def _predict(model, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = predict_logits(model, X)
    return logits, logits[..., 1:].argmax(dim=-1) + 1  # tag ids ≥ 1: padding is never predicted


def _as_tags(ids: torch.Tensor, mask: torch.Tensor, tags: list[str]) -> list[list[str]]:
    return [[tags[j - 1] for j in row[keep].tolist()] for row, keep in zip(ids, mask)]


def split_metrics(model, X: torch.Tensor, y: torch.Tensor, *, tags: list[str], scheme: str | None,
                  tokens: list[list[str]]) -> dict:
    """The metrics of the module docstring on one split (X, y), with a few tagged examples."""
    logits, pred = _predict(model, X)
    mask = y != PAD
    gold_ids, pred_ids = y[mask] - 1, pred[mask] - 1
    scores = tag_scores(gold_ids, pred_ids, tags)
    result = {"token_accuracy": token_accuracy(pred, y), "f1_macro": scores["f1_macro"],
              "loss": F.cross_entropy(logits[mask].double(), y[mask]).item(),
              "tokens": int(mask.sum()), "sentences": len(y), "per_tag": scores["per_tag"],
              "class_names": tags, "confusion_matrix": confusion_matrix(gold_ids, pred_ids, len(tags)).tolist()}
    gold, predicted = _as_tags(y, mask, tags), _as_tags(pred, mask, tags)
    if scheme == "bio":
        entities = entity_scores(gold, predicted)
        result.update({f"entity_{k}": entities[k] for k in ("precision", "recall", "f1")},
                      entity_chunks=entities["chunks"], entity_per_type=entities["per_type"])
    result["examples"] = [{"tokens": " ".join(w), "tags": " ".join(g), "predicted": " ".join(p)}
                          for w, g, p in list(zip(tokens, gold, predicted))[:EXAMPLES]]
    return result


def _vocab(run: Run) -> Vocab:
    return Vocab.from_dict(run.info["tagging"]["vocab"])


def _check_length(run: Run, sentences: list[list[str]]) -> None:
    limit = run.info["architecture"].get("max_len")
    longest = max((len(s) for s in sentences), default=0)
    if limit is not None and longest > limit:
        raise UserError(f"a sentence of {longest} tokens is longer than this transformer's {limit} positions",
                        "--data", "split the long sentences, or train with a larger text.max_len")


def tag_sentences(run: Run, sentences: list[list[str]]) -> list[list[str]]:
    """One tag per token of each sentence (token lists, as split on whitespace)."""
    sentences = [list(s) for s in sentences]
    if not sentences or any(not s for s in sentences):
        raise UserError("every sentence needs at least one token", "sentences", "drop the empty sentences")
    _check_length(run, sentences)
    tags = run.info["tagging"]["tags"]
    X, _ = encode(Tagged(sentences, [[tags[0]] * len(s) for s in sentences]), _vocab(run), tags)
    _, pred = _predict(run.model.eval(), X)
    return _as_tags(pred, X != PAD, tags)


def _columns(run: Run) -> dict:
    t = (run.config or {}).get("tagging", {})
    return {"tokens_column": t.get("tokens_column", "tokens"), "tags_column": t.get("tags_column", "tags")}


def predict_tags(run: Run, source: str) -> str:
    sentences = read_unlabelled(source, tokens_column=_columns(run)["tokens_column"]).tokens
    predicted = tag_sentences(run, sentences)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["tokens", "tags"])
    writer.writerows([" ".join(w), " ".join(t)] for w, t in zip(sentences, predicted))
    return buf.getvalue()


def evaluate_tags(run: Run, source: str) -> dict:
    """The run's metrics on a labelled CSV / CoNLL file: metrics.json's "test" keys."""
    data = read_labelled(source, **_columns(run))
    _check_length(run, data.tokens)
    info = run.info["tagging"]
    X, y = encode(data, _vocab(run), info["tags"], where=source)
    return split_metrics(run.model.eval(), X, y, tags=info["tags"], scheme=info["scheme"], tokens=data.tokens)


__all__ = ["evaluate_tags", "predict_tags", "split_metrics", "tag_sentences"]
