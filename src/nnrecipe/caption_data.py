"""Captioned images → tensors for the captioner, and its architecture spec.

Sources: the generated ``cap:digits`` (`nnrecipe.data.caption_canvas`, split by the task), a
folder with ``captions.csv`` or a COCO captions JSON (`nnrecipe.data.captions`), split **by image**
into train/val/test with ``data.val_fraction`` / ``data.test_fraction`` and the seed (every caption
of an image goes where the image goes; ``data.test_data``: a separate captions source for test).

Vocabulary: word level (lower-cased words and punctuation marks, `nnrecipe.data.text`) on the
training captions, ``caption.min_freq`` / ``caption.max_vocab`` sending rare words to <unk>.
Images: per-channel z-scores with the training images' mean and standard deviation
(``data.standardize``; else as read, in [0, 1]), every split's images in one tensor.

Rows: one per (image, caption), captions cut to ``caption.max_len`` words:

    inputs  = (image index [R] into the image tensor,  tgt_in = [<bos>, w_1 … w_n] [R, T])
    targets = [w_1 … w_n, <eos>, <pad>] [R, T + 1]

The extra <pad> column is where the forward packs each row's attention penalty
(`nnrecipe.captioning`); padding (id 0) is ignored by the loss and the accuracy. Images are held
once and gathered by index per batch, not copied per caption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnrecipe.config import Config
from nnrecipe.data import BOS, EOS, PAD, Vocab, pad_batch, split_indices
from nnrecipe.data.caption_canvas import caption_task
from nnrecipe.data.captions import CaptionSet, read_captions
from nnrecipe.data.text import tokenize
from nnrecipe.errors import UserError

SPLITS = ("train", "val", "test")
LEVEL = "word"


@dataclass
class CaptionPrepared:
    name: str
    vocab: Vocab
    splits: dict[str, CaptionSet]
    images: torch.Tensor  # every split's images, standardized, [N, C, H, W]
    offsets: dict[str, int]  # where each split's images start in `images`
    mean: list[float]  # per channel, subtracted before the division by `std`
    std: list[float]
    rows: dict[str, tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]

    @property
    def image_shape(self) -> list[int]:
        return list(self.images.shape[1:])

    def split_images(self, split: str) -> torch.Tensor:
        start = self.offsets[split]
        return self.images[start:start + len(self.splits[split].files)]

    def info(self) -> dict:
        return {"vocab": self.vocab.to_dict(), "image_shape": self.image_shape, "mean": self.mean,
                "std": self.std}


def normalized(caption: str) -> str:
    """A caption as the model writes it: lower-cased word tokens joined by single spaces."""
    return " ".join(tokenize(caption, LEVEL))


def load_splits(cfg: Config) -> tuple[str, dict[str, CaptionSet]]:
    source = cfg.data.source
    if source.startswith("cap:"):
        return source[4:], caption_task(source, seed=cfg.train.seed, size=cfg.caption.task_size)
    data = read_captions(source, image_size=cfg.data.image_size, channels=cfg.data.channels)
    test = None
    if cfg.data.test_data:
        test = read_captions(cfg.data.test_data, image_size=tuple(data.images.shape[2:]),
                             channels=data.images.shape[1])
    rows = split_indices(len(data.files), y=None, val_fraction=cfg.data.val_fraction,
                         test_fraction=cfg.data.test_fraction, seed=cfg.train.seed, stratify=False,
                         has_test=test is not None)
    splits = {name: data.subset(ix) for name, ix in zip(SPLITS, rows)}
    if test is not None:
        splits["test"] = test
    return data.name, splits


def encode_rows(captions: CaptionSet, vocab: Vocab, *, max_len: int, offset: int = 0):
    """((image index [R], tgt_in [R, T]), targets [R, T + 1]) of every (image, caption) pair."""
    index, words = [], []
    for i, refs in enumerate(captions.captions):
        for caption in refs:
            index.append(offset + i)
            words.append(vocab.encode(caption)[:max_len])
    if not words:
        raise UserError("no captions to train on", captions.name, "give every image at least one caption")
    tgt_in, _ = pad_batch([[BOS, *w] for w in words])
    tgt_out, _ = pad_batch([[*w, EOS, PAD] for w in words])
    return (torch.tensor(index, dtype=torch.long), tgt_in), tgt_out


def channel_stats(images: np.ndarray, standardize: bool) -> tuple[list[float], list[float]]:
    if not standardize:
        return [0.0] * images.shape[1], [1.0] * images.shape[1]
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    return mean.tolist(), np.where(std > 1e-8, std, 1.0).tolist()


def standardize_images(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (torch.as_tensor(images, dtype=torch.float32) - m) / s


def prepare_captions(cfg: Config) -> CaptionPrepared:
    name, splits = load_splits(cfg)
    shapes = {k: v.images.shape[1:] for k, v in splits.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"the test images are {shapes['test']}, the training images {shapes['train']}",
                        cfg.data.test_data or cfg.data.source, "use images of one size and channel count")
    if any(len(v.files) == 0 for v in splits.values()):
        sizes = ", ".join(f"{k} {len(v.files)}" for k, v in splits.items())
        raise UserError(f"too few images to split ({sizes} images)",
                        cfg.data.source, "add images, or change data.val_fraction / data.test_fraction")
    c = cfg.caption
    vocab = Vocab.build((t for refs in splits["train"].captions for t in refs), LEVEL, min_freq=c.min_freq,
                        max_size=c.max_vocab)
    mean, std = channel_stats(splits["train"].images, cfg.data.standardize)
    images = standardize_images(np.concatenate([splits[k].images for k in SPLITS]), mean, std)
    offsets = dict(zip(SPLITS, np.cumsum([0] + [len(splits[k].files) for k in SPLITS[:-1]]).tolist()))
    rows = {k: encode_rows(splits[k], vocab, max_len=c.max_len, offset=offsets[k]) for k in SPLITS}
    return CaptionPrepared(name=name, vocab=vocab, splits=splits, images=images, offsets=offsets, mean=mean,
                           std=std, rows=rows)


def captioner_architecture(cfg: Config, data: CaptionPrepared) -> dict:
    m, c = cfg.model, cfg.caption
    channels, height, width = data.image_shape
    spec = {"name": "captioner", "in_channels": channels, "image_size": [height, width],
            "vocab_size": len(data.vocab), "encoder": c.encoder, "norm": "batch" if m.norm == "auto" else m.norm,
            "activation": m.activation, "negative_slope": m.negative_slope, "cell": c.cell,
            "embed_dim": m.embed_dim, "hidden": m.rnn_hidden, "attention_dim": c.attention_dim, "gate": c.gate,
            "dropout": m.dropout}
    if c.encoder == "cnn":
        spec.update(channels=list(m.channels), convs_per_stage=m.convs_per_stage)
    else:
        spec.update(widths=list(m.widths), blocks=list(m.blocks))
    return spec


def token_weights(targets: torch.Tensor) -> torch.Tensor:
    """Target words (<eos> included) per row: each torchrun process's share of a batch's loss."""
    return (targets != PAD).sum(dim=1)


__all__ = ["CaptionPrepared", "captioner_architecture", "encode_rows", "load_splits", "normalized",
           "prepare_captions", "standardize_images", "token_weights"]
