"""Sequence data → token tensors for the three sequence tasks (the tabular path is `prepare.py`).

Sources: a generated task ``seq:NAME`` (`nnrecipe.data.seqtasks`, split by the task itself so that
held-out sequences are longer than most training ones), a text-classification CSV (``text.text_column``
+ ``text.label_column``) or a parallel CSV (``text.source_column`` + ``text.target_column``, used when
both exist); CSVs are split stratified/random like tables. Vocabularies are built on the training
split only and saved with the model.

Tensors per kind (pad id 0 everywhere, ignored by the loss and the metrics):
- ``classify``: X = ids [N, T] (right-padded), y = class index [N].
- ``seq2seq``:  X = (src [N, S], tgt_in [N, T]) with tgt_in = <bos> y₁ … y_m, y = tgt_out [N, T] =
  y₁ … y_m <eos> (teacher forcing: the decoder reads the gold previous token).
- ``lm``:       the split's text as one id stream cut into windows of block_size + 1 tokens with
  stride block_size; X = window[:-1], y = window[1:] (next-token prediction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nnrecipe.config import Config, is_text_corpus
from nnrecipe.data import (BOS, EOS, SeqSplit, SeqTask, Vocab, encode_labels, load_parallel_csv,
                           load_text_csv, make_task, pad_batch, split_indices)
from nnrecipe.data.seqtasks import SEQ_KINDS
from nnrecipe.data.text import read_column
from nnrecipe.data.text_inference import SAMPLE_ROWS, infer_columns, infer_level, read_corpus
from nnrecipe.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass
class SeqPrepared:
    name: str
    kind: str  # classify | seq2seq | lm
    level: str
    src_vocab: Vocab
    tgt_vocab: Vocab | None  # seq2seq only
    class_names: list[str] | None  # classify only
    tensors: dict  # split -> (X, y); X a tensor or (src, tgt_in)
    texts: dict  # split -> SeqSplit (raw strings, for decoding metrics)

    @property
    def task(self) -> str:
        return "classification"  # every kind trains a softmax over classes or tokens

    def info(self) -> dict:
        return {"kind": self.kind, "level": self.level, "src_vocab": self.src_vocab.to_dict(),
                "tgt_vocab": self.tgt_vocab.to_dict() if self.tgt_vocab else None}


def resolve_text(cfg: Config) -> tuple[str, dict]:
    """The task kind (classify | seq2seq | lm) and the ``text`` settings `fit` infers from the data
    (`nnrecipe.data.text_inference`): the columns and the tokenizer level, as config values, so
    that config.yaml records what was used."""
    source, t = cfg.data.source, cfg.text
    level = {"level": "char"} if t.level == "auto" else {}  # bundled tasks and .txt corpora: characters
    if source.startswith("seq:"):
        return SEQ_KINDS.get(source[4:], "classify"), level
    if is_text_corpus(source):
        return "lm", level
    if not Path(source).is_file() or Path(source).suffix.lower() != ".csv":
        raise UserError(f"sequence models need text: {source}", "--data",
                        "pass seq:reverse|addition|memory|charlm, a .txt file or folder, or a CSV with a text column")
    columns = infer_columns(source, text=t.text_column, label=t.label_column or cfg.data.target,
                            pair=(t.source_column, t.target_column))
    names = ({"source_column": columns.first, "target_column": columns.second} if columns.kind == "seq2seq"
             else {"text_column": columns.first, "label_column": columns.second})
    level = t.level if t.level != "auto" else infer_level(read_column(source, columns.first)[:SAMPLE_ROWS])
    return columns.kind, {**names, "level": level}


def load_task(cfg: Config) -> SeqTask:
    """The generated task, a text corpus cut into contiguous stretches, or a CSV split into
    train/val/test with the data fractions and seed (columns and level as `resolve_text` gives)."""
    source = cfg.data.source
    t = cfg.text.model_copy(update=resolve_text(cfg)[1])
    if source.startswith("seq:"):
        return make_task(source[4:], seed=cfg.train.seed, size=t.task_size)
    name = Path(source).stem
    if is_text_corpus(source):
        splits = _contiguous(read_corpus(source), val=cfg.data.val_fraction, test=cfg.data.test_fraction)
        return SeqTask(name, "lm", t.level, *splits, description=f"text corpus {source}")
    if t.text_column is None:  # a parallel CSV (resolve_text names the pair)
        src, tgt = load_parallel_csv(source, source_column=t.source_column, target_column=t.target_column)
        idx = split_indices(len(src), y=None, val_fraction=cfg.data.val_fraction,
                            test_fraction=cfg.data.test_fraction, seed=cfg.train.seed, stratify=False)
        splits = [SeqSplit([src[i] for i in ix], targets=[tgt[i] for i in ix]) for ix in idx]
        return SeqTask(name, "seq2seq", t.level, *splits, description=f"parallel corpus {source}")
    texts, labels = load_text_csv(source, text_column=t.text_column, label_column=t.label_column)
    y, _ = encode_labels(np.asarray(labels, dtype=object))
    idx = split_indices(len(texts), y=y, val_fraction=cfg.data.val_fraction,
                        test_fraction=cfg.data.test_fraction, seed=cfg.train.seed, stratify=True)
    splits = [SeqSplit([texts[i] for i in ix], labels=[labels[i] for i in ix]) for ix in idx]
    return SeqTask(name, "classify", t.level, *splits, description=f"text classification {source}")


def _contiguous(text: str, *, val: float, test: float) -> list[SeqSplit]:
    """Train, val, test: the first 1 − val − test of the text, then the next val, then the rest,
    each cut at a whitespace so that no word is split (a model is scored on text that follows
    what it read, never on text interleaved with it)."""
    n = len(text)

    def cut(at: float) -> int:
        i = int(n * at)
        space = text.find(" ", i)
        return space if 0 <= space < n else i
    a, b = cut(1 - val - test), cut(1 - test)
    parts = [text[:a], text[a:b], text[b:]]
    if min(len(p) for p in parts) < 2:
        raise UserError(f"the text is too short to split ({n} characters)", "--data", "give more text")
    return [SeqSplit([p]) for p in parts]


def _windows(ids: list[int], block: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = (len(ids) - 1) // block
    if n < 1:
        raise UserError(f"text shorter than one window of {block + 1} tokens", "text.block_size",
                        "lower text.block_size or give more text")
    t = torch.tensor(ids[: n * block + 1])
    starts = torch.arange(n) * block
    win = torch.stack([t[s: s + block + 1] for s in starts.tolist()])
    return win[:, :-1].contiguous(), win[:, 1:].contiguous()


def encode_split(split: SeqSplit, kind: str, src: Vocab, tgt: Vocab | None, classes: list[str] | None,
                 *, max_len: int, block_size: int):
    if kind == "lm":
        return _windows(src.encode("".join(split.sources) if src.level == "char" else " ".join(split.sources)),
                        block_size)
    x, _ = pad_batch([src.encode(s) for s in split.sources], max_len=None)
    x = x[:, :max_len]
    if kind == "classify":
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({lab for lab in split.labels if lab not in index})
        if unknown:
            raise UserError(f"labels {unknown[:3]} do not occur in the training split", "--data",
                            "give every class a few more examples")
        return x, torch.tensor([index[lab] for lab in split.labels])
    full, _ = pad_batch([tgt.encode(s, bos=True, eos=True)[: max_len + 1] for s in split.targets])
    return (x, full[:, :-1].contiguous()), full[:, 1:].contiguous()


def prepare_sequences(cfg: Config, *, extend_vocab: Callable[[SeqTask, Vocab], Vocab] | None = None) -> SeqPrepared:
    """`extend_vocab(task, vocab)` may add tokens to the source vocabulary before encoding (EDA's synonyms)."""
    task = load_task(cfg)
    t = cfg.text
    level = task.level
    src = Vocab.build(task.train.sources, level, min_freq=t.min_freq, max_size=t.max_vocab,
                      reverse_numbers=t.reverse_numbers)
    if extend_vocab is not None:
        src = extend_vocab(task, src)
    tgt = (Vocab.build(task.train.targets, level, min_freq=t.min_freq, max_size=t.max_vocab,
                       reverse_numbers=t.reverse_numbers)
           if task.kind == "seq2seq" else None)
    classes = sorted(set(task.train.labels)) if task.kind == "classify" else None
    if classes is not None and len(classes) < 2:
        raise UserError("text classification needs at least two classes", "--data", "check the label column")
    tensors = {name: encode_split(getattr(task, name), task.kind, src, tgt, classes, max_len=t.max_len,
                                  block_size=t.block_size) for name in SPLITS}
    return SeqPrepared(name=task.name, kind=task.kind, level=level, src_vocab=src, tgt_vocab=tgt,
                       class_names=classes, tensors=tensors,
                       texts={name: getattr(task, name) for name in SPLITS})


def to_device(tensors: dict, device: torch.device) -> dict:
    def move(x):
        return tuple(t.to(device) for t in x) if isinstance(x, tuple) else x.to(device)
    return {k: (move(X), y.to(device)) for k, (X, y) in tensors.items()}


__all__ = ["BOS", "EOS", "SeqPrepared", "encode_split", "load_task", "prepare_sequences", "resolve_text", "to_device"]
