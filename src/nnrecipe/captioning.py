"""The captioner's loss, decoding and metrics, and using a trained captioning run (predict, evaluate).

Loss (Xu et al. 2015, eq. 14), per image: the caption's negative log-likelihood plus the doubly
stochastic attention penalty, which asks every grid location to receive a total attention of about
one over the caption:

    L = Σ_t −log p(y_t | a, y_<t)  +  λ Σ_i (1 − Σ_t α_ti)²        (t over the caption's words and <eos>)

A batch's loss is the sum of L over its rows divided by the batch's target words, i.e. the mean per
word of Xu et al.'s loss (λ = ``caption.attention_reg``); with label smoothing ε (regularization.
label_smoothing) the log-likelihood term is the smoothed cross-entropy. So that the driver's
Trainer needs no special case, the forward packs each row's penalty after its logits: output
[B, T + 1, V], the penalty at [b, T, 0], under the targets' extra <pad> column (which the accuracy
ignores). Dividing by words, not rows, lets torchrun weigh each process by its share of the words.

Metrics on a split's images, decoding greedily or by beam search (``caption.beam``), against every
reference caption of the image (as the model writes text: lower-cased word tokens):

- BLEU-1…4: corpus BLEU with n-grams up to n, equal to sacreBLEU's (`nnrecipe.metrics.bleu`)
- exact match: the share of images whose caption equals one of its references

The attention map of a generated word is the teacher-forced α_t over the caption the decoder
produced (the same weights the decoder had when it chose that word).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from nnrecipe.caption_data import normalized, standardize_images
from nnrecipe.data import BOS, EOS, PAD, UNK, Vocab
from nnrecipe.data.caption_canvas import caption_task
from nnrecipe.data.captions import CaptionSet, read_captions, read_images
from nnrecipe.errors import UserError
from nnrecipe.metrics.bleu import bleu
from nnrecipe.models import build_model
from nnrecipe.run import MODEL_FORMAT, Run, read_metrics_and_config

EXAMPLES = 8
ORDERS = (1, 2, 3, 4)
_FIX = "pass a run directory written by `nnrecipe fit --model captioner`"


def make_forward(images: torch.Tensor, *, teacher_forcing: float):
    """(model, (image index, tgt_in)) → [B, T + 1, V]: the logits, then each row's penalty (module docstring)."""
    def forward(model, xb):
        index, tgt_in = xb
        logits, alpha = model(images[index], tgt_in, teacher_forcing if model.training else 1.0)
        words = (tgt_in != PAD).unsqueeze(-1).to(alpha.dtype)  # step t predicts a word or <eos>
        penalty = (1.0 - (alpha * words).sum(dim=1)).pow(2).sum(dim=-1)  # Σ_i (1 − Σ_t α_ti)², [B]
        return torch.cat([logits, F.pad(penalty.view(-1, 1, 1), (0, logits.shape[-1] - 1))], dim=1)
    return forward


def make_loss(*, attention_reg: float, label_smoothing: float):
    def loss(out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        words = targets[:, :-1]
        nll = F.cross_entropy(out[:, :-1].flatten(0, 1), words.flatten(), ignore_index=PAD, reduction="sum",
                              label_smoothing=label_smoothing)
        return (nll + attention_reg * out[:, -1, 0].sum()) / (words != PAD).sum().clamp(min=1)
    return loss


@torch.no_grad()
def decode(model, images: torch.Tensor, vocab: Vocab, *, beam: int, length_penalty: float, max_len: int,
           batch_size: int = 256) -> list[str]:
    """One caption per image (greedy for beam 1, else beam search), as word tokens joined by spaces."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        tokens = (model.greedy_decode(x, max_len=max_len + 1, bos_id=BOS, eos_id=EOS) if beam == 1 else
                  model.beam_search(x, max_len=max_len + 1, bos_id=BOS, eos_id=EOS, beam=beam,
                                    length_penalty=length_penalty))
        out += [vocab.decode(row) for row in tokens.tolist()]
    return out


@torch.no_grad()
def attention_maps(model, images: torch.Tensor, captions: list[str], vocab: Vocab) -> list[np.ndarray]:
    """Per image: α [words + 1 (<eos>), h, w] over the caption given (teacher-forced)."""
    model.eval()
    maps = []
    for image, caption in zip(images, captions):
        ids = [vocab.tokens.index(w) if w in vocab.tokens else UNK for w in caption.split()]  # decode's tokens
        tgt_in = torch.tensor([[BOS, *ids]], device=images.device)
        _, alpha = model(image[None], tgt_in)
        maps.append(alpha[0].reshape(alpha.shape[1], *model.grid).cpu().numpy())
    return maps


def caption_scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """BLEU-1…4 (0..100) and exact match of generated captions against the normalized references."""
    refs = [[normalized(r) for r in rs] for rs in references]
    scores = {f"bleu_{n}": bleu(hypotheses, refs, max_order=n) for n in ORDERS}
    scores["exact_match"] = float(np.mean([h in rs for h, rs in zip(hypotheses, refs)]))
    return scores


def split_metrics(model, images: torch.Tensor, captions: CaptionSet, vocab: Vocab, *, beam: int,
                  length_penalty: float, max_len: int) -> dict:
    """Caption every image of a split and score it (module docstring); the first few as examples."""
    generated = decode(model, images, vocab, beam=beam, length_penalty=length_penalty, max_len=max_len)
    return {**caption_scores(generated, captions.captions), "images": len(generated),
            "references": sum(len(r) for r in captions.captions),
            "decoding": "greedy" if beam == 1 else f"beam {beam}",
            "examples": [{"file": f, "caption": g, "references": r}
                         for f, g, r in list(zip(captions.files, generated, captions.captions))[:EXAMPLES]]}


def samples(model, images: torch.Tensor, captions: CaptionSet, vocab: Vocab, count: int, *, beam: int,
            length_penalty: float, max_len: int) -> list[dict]:
    """The first `count` images' caption and per-word attention maps α [words + 1][h][w] (metrics.json)."""
    images = images[:count]
    generated = decode(model, images, vocab, beam=beam, length_penalty=length_penalty, max_len=max_len)
    maps = attention_maps(model, images, generated, vocab)
    return [{"index": i, "file": captions.files[i], "caption": caption, "words": caption.split() + ["<eos>"],
             "references": captions.captions[i], "attention": m.round(4).tolist()}
            for i, (caption, m) in enumerate(zip(generated, maps))]


# --- a finished run ---------------------------------------------------------------------------------

def load_captioner(run_dir: Path, info: dict) -> Run:
    if info.get("format") != MODEL_FORMAT or "architecture" not in info or "captioning" not in info:
        raise UserError("model.json is not a captioner's", str(run_dir / "model.json"), _FIX)
    try:
        model = build_model(info["architecture"])
        model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    except FileNotFoundError:
        raise UserError("missing model.safetensors", str(run_dir), _FIX) from None
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise UserError(f"corrupt or mismatched weights ({type(exc).__name__})", str(run_dir / "model.safetensors"),
                        _FIX) from None
    metrics, config = read_metrics_and_config(run_dir)
    return Run(dir=run_dir, model=model.eval(), info=info, metrics=metrics, config=config)


def _source_images(run: Run, source: str, *, labelled: bool) -> CaptionSet:
    info = run.info["captioning"]
    channels, height, width = info["image_shape"]
    if source.startswith("cap:"):  # the generated task: the run's own test canvases
        cfg = run.config or {}
        return caption_task(source, seed=(cfg.get("train") or {}).get("seed", 0),
                            size=(cfg.get("caption") or {}).get("task_size"))["test"]
    read = read_captions if labelled else read_images
    return read(source, image_size=(height, width), channels=channels)


def _decoding(run: Run) -> dict:
    return run.info["decoding"]


def caption_images(run: Run, images: CaptionSet) -> list[str]:
    """One caption per image of `images` (pixels in [0, 1], the run's size and channels)."""
    info = run.info["captioning"]
    x = standardize_images(images.images, info["mean"], info["std"])
    d = _decoding(run)
    return decode(run.model, x, Vocab.from_dict(info["vocab"]), beam=d["beam"], length_penalty=d["length_penalty"],
                  max_len=d["max_len"])


def predict_captions(run: Run, source: str) -> str:
    """CSV ``file,caption``: one generated caption per image of `source`."""
    images = _source_images(run, source, labelled=False)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "caption"])
    writer.writerows(zip(images.files, caption_images(run, images)))
    return buf.getvalue()


def evaluate_captions(run: Run, source: str) -> dict:
    """BLEU-1…4 and exact match of the run on a captioned source (metrics.json's "test" keys)."""
    images = _source_images(run, source, labelled=True)
    generated = caption_images(run, images)
    d = _decoding(run)
    return {**caption_scores(generated, images.captions), "images": len(generated),
            "references": sum(len(r) for r in images.captions),
            "decoding": "greedy" if d["beam"] == 1 else f"beam {d['beam']}"}


__all__ = ["attention_maps", "caption_images", "caption_scores", "decode", "evaluate_captions", "load_captioner",
           "make_forward", "make_loss", "predict_captions", "samples", "split_metrics"]
