"""Predict with a trained sequence run: text in, class or decoded text out; sampling for LMs.

Inputs: a CSV with the run's text column (``text.text_column``, or ``text.source_column`` for
seq2seq) or a plain .txt file with one input per line. The vocabulary saved in model.json encodes
them exactly as in training (unknown tokens → <unk>, truncated to ``text.max_len``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from nnrecipe.data import Vocab, pad_batch
from nnrecipe.errors import UserError
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.run import Run
from nnrecipe.seqgen import decode_outputs, sample_text
from nnrecipe.training.loop import predict_logits


def is_sequence(run: Run) -> bool:
    return "sequence" in run.info


def _column(run: Run) -> str:
    text = (run.config or {}).get("text", {})
    kind = run.info["sequence"]["kind"]
    return text.get("source_column", "source") if kind == "seq2seq" else text.get("text_column", "text")


def read_inputs(run: Run, source: str) -> list[str]:
    path = Path(source)
    if not path.is_file():
        raise UserError(f"file not found: {source}", "--data", "pass a CSV or a .txt file with one input per line")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {source} ({type(exc).__name__})", "--data", "pass a UTF-8 text file") from None
    if path.suffix.lower() != ".csv":
        lines = [line for line in raw.splitlines() if line.strip()]
        if not lines:
            raise UserError(f"no inputs in {source}", "--data", "write one input per line")
        return lines
    rows = list(csv.DictReader(io.StringIO(raw)))
    column = _column(run)
    if not rows or column not in rows[0]:
        present = ", ".join(rows[0].keys()) if rows else "none"
        raise UserError(f"column '{column}' not found (columns: {present})", source,
                        f"add a '{column}' column or pass a .txt file")
    return [r[column] for r in rows]


def predict_texts(run: Run, texts: list[str]) -> tuple[list[str], np.ndarray | None]:
    """(predictions, calibrated class probabilities or None)."""
    seq = run.info["sequence"]
    src_vocab = Vocab.from_dict(seq["src_vocab"])
    max_len = run.info.get("decoding", {}).get("max_len", 256)
    x, _ = pad_batch([src_vocab.encode(t)[:max_len] or [1] for t in texts])
    model = run.model.eval()
    if seq["kind"] == "classify":
        probs = apply_temperature(predict_logits(model, x).double(), run.temperature).numpy()
        return list(np.asarray(run.class_names, dtype=object)[probs.argmax(1)]), probs
    if seq["kind"] == "seq2seq":
        d = run.info.get("decoding", {})
        outputs, _ = decode_outputs(model, run.info["architecture"], x, Vocab.from_dict(seq["tgt_vocab"]),
                                    max_len=2 * x.shape[1] + 10, beam=d.get("beam", 1),
                                    length_penalty=d.get("length_penalty", 0.6))
        return outputs, None
    raise UserError("a language model continues text rather than labelling it", "RUN_DIR",
                    "use `nnrecipe sample RUN_DIR --prompt TEXT`")


def predict_sequences(run: Run, source: str) -> str:
    texts = read_inputs(run, source)
    preds, probs = predict_texts(run, texts)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = run.class_names if probs is not None else []
    writer.writerow(["input", "prediction"] + [f"prob_{c}" for c in names])
    for i, (text, pred) in enumerate(zip(texts, preds)):
        writer.writerow([text, pred] + ([f"{p:.6f}" for p in probs[i]] if probs is not None else []))
    return buf.getvalue()


def sample(run: Run, prompt: str, *, length: int = 200, temperature: float = 0.8, seed: int = 0) -> str:
    """A language-model run continues `prompt` by `length` tokens sampled at `temperature`."""
    if not is_sequence(run) or run.info["sequence"]["kind"] != "lm":
        raise UserError("sampling needs a language-model run", "RUN_DIR",
                        "train one with `nnrecipe fit --data seq:charlm` (or a text file)")
    if temperature <= 0:
        raise UserError(f"temperature must be > 0, got {temperature}", "--temperature", "use e.g. 0.8")
    vocab = Vocab.from_dict(run.info["sequence"]["src_vocab"])
    torch.manual_seed(seed)
    return sample_text(run.model, run.info["architecture"], vocab, prompt, length, temperature=temperature,
                       seed=seed)
