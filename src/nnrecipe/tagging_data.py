"""Sequence-tagging data → token and tag tensors, and the tagger's architecture spec.

Sources (`nnrecipe.data.tagged_text` reads the files): the generated ``seq:tagging``
(`nnrecipe.data.tagging_task`, split by the task), a tagging CSV or a CoNLL file, split into
train/val/test at random with ``data.val_fraction`` / ``data.test_fraction`` and the seed
(``data.test_data``: a separate labelled file for test). The token vocabulary is built on the
training split (level ``whitespace``: the given tokens, case kept; ``text.min_freq`` and
``text.max_vocab`` send rare tokens to <unk>); the tag set on every split's tags (labels, not
inputs: a tag absent from training is still scored), sorted, tag k with id k + 1.

Tensors (id 0 is padding in both, ignored by the loss and the metrics): X = token ids [N, T]
right-padded, y = tag ids [N, T] on the same positions. Nothing is truncated: one tag per token.

Models: ``rnn | lstm | gru`` many-to-many (`nnrecipe.models.rnn`, bidirectional by default for
tagging, `nnrecipe.config.TAGGING_DEFAULTS`) or a ``transformer`` encoder with a per-token head
(``pool: none``); ``mlp``, the default name, means lstm. The head has K + 1 outputs, id 0 never
being a target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nnrecipe.config import Config
from nnrecipe.data import PAD, Vocab, pad_batch, split_indices
from nnrecipe.data.tagged_text import Tagged, read_labelled
from nnrecipe.data.tagging_task import make_tagging
from nnrecipe.errors import UserError
from nnrecipe.metrics.tagging import is_bio

SPLITS = ("train", "val", "test")
TAGGERS = ("rnn", "lstm", "gru", "transformer")
LEVEL = "whitespace"


@dataclass
class TaggingPrepared:
    name: str
    vocab: Vocab
    tags: list[str]  # tag k has id k + 1
    scheme: str | None  # "bio" when every tag is O / B-X / I-X: entity-level metrics then
    splits: dict[str, Tagged]
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def info(self) -> dict:
        return {"vocab": self.vocab.to_dict(), "tags": self.tags, "scheme": self.scheme}


def load_splits(cfg: Config) -> tuple[str, dict[str, Tagged]]:
    source, columns = cfg.data.source, {"tokens_column": cfg.tagging.tokens_column,
                                        "tags_column": cfg.tagging.tags_column}
    if source.startswith("seq:"):
        if source != "seq:tagging":
            raise UserError(f"{source} is not a tagging task", "--data", "use seq:tagging, a CSV or a CoNLL file")
        return "tagging", make_tagging(seed=cfg.train.seed, size=cfg.text.task_size)
    if not Path(source).is_file():
        raise UserError(f"sequence tagging needs a file of tagged sentences: {source}", "--data",
                        "pass seq:tagging, a CSV with tokens,tags columns or a CoNLL file")
    data = read_labelled(source, **columns)
    test = read_labelled(cfg.data.test_data, **columns) if cfg.data.test_data else None
    rows = split_indices(len(data), y=None, val_fraction=cfg.data.val_fraction, test_fraction=cfg.data.test_fraction,
                         seed=cfg.train.seed, stratify=False, has_test=test is not None)
    splits = {name: data.subset(ix) for name, ix in zip(SPLITS, rows)}
    if test is not None:
        splits["test"] = test
    return Path(source).stem, splits


def encode(tagged: Tagged, vocab: Vocab, tags: list[str], *, where: str = "--data") -> tuple[torch.Tensor, ...]:
    """(token ids [N, T], tag ids [N, T]); tags outside `tags` are refused."""
    X, _ = pad_batch([vocab.encode(" ".join(s)) for s in tagged.tokens])
    index = {t: i + 1 for i, t in enumerate(tags)}
    unknown = sorted({t for s in tagged.tags for t in s} - set(index))
    if unknown:
        raise UserError(f"tags {unknown[:3]} are not tags of this run ({', '.join(tags[:8])}"
                        f"{' …' if len(tags) > 8 else ''})", where, "keep only sentences with the run's tags")
    y, _ = pad_batch([[index[t] for t in s] for s in tagged.tags])
    return X, y


def prepare_tagging(cfg: Config) -> TaggingPrepared:
    name, splits = load_splits(cfg)
    vocab = Vocab.build((" ".join(s) for s in splits["train"].tokens), LEVEL, min_freq=cfg.text.min_freq,
                        max_size=cfg.text.max_vocab)
    tags = sorted({t for split in splits.values() for s in split.tags for t in s})
    if len(tags) < 2:
        raise UserError(f"tagging needs at least two distinct tags, got {tags}", cfg.data.source, "check the tags")
    tensors = {k: encode(v, vocab, tags) for k, v in splits.items()}
    return TaggingPrepared(name=name, vocab=vocab, tags=tags, scheme="bio" if is_bio(tags) else None,
                           splits=splits, tensors=tensors)


def tagging_architecture(cfg: Config, data: TaggingPrepared) -> dict:
    m = cfg.model
    name = "lstm" if m.name == "mlp" else m.name
    if name not in TAGGERS:
        raise UserError(f"model '{m.name}' does not tag token sequences", "--model", f"use {', '.join(TAGGERS)}")
    common = {"vocab_size": len(data.vocab), "out_features": len(data.tags) + 1, "dropout": m.dropout}
    if name == "transformer":
        longest = max(x.shape[1] for x, _ in data.tensors.values())
        return {"name": name, "kind": "encoder", "pool": "none", "dim": m.dim, "heads": m.heads, "depth": m.depth,
                "mlp_ratio": m.mlp_ratio, "positions": m.positions, "max_len": max(cfg.text.max_len, longest),
                **common}
    return {"name": name, "pattern": "many_to_many", "bidirectional": m.bidirectional, "embed_dim": m.embed_dim,
            "hidden": m.rnn_hidden, "num_layers": m.num_layers, **common}


def token_weights(y: torch.Tensor) -> torch.Tensor:
    """Tagged tokens per sentence: each torchrun process's share of a batch's loss."""
    return (y != PAD).sum(dim=1)


__all__ = ["TAGGERS", "TaggingPrepared", "encode", "load_splits", "prepare_tagging", "tagging_architecture"]
