"""Use a trained sequence run: predict (text in, class or decoded text out), evaluate on labelled
text, and sampling for LMs.

Inputs: a CSV with the run's text column (``text.text_column``, or ``text.source_column`` for
seq2seq) or a plain .txt file with one input per line. The vocabulary saved in model.json encodes
them exactly as in training (unknown tokens → <unk>, truncated to ``text.max_len``).

`evaluate_sequences` scores labelled text with fit's own encoding (`sequence_data.encode_split`) and
fit's own metric blocks, so the test split written to a CSV reproduces metrics.json's "test":
- classify: a CSV with ``text.text_column`` and ``text.label_column`` → the tabular classification
  metrics of softmax(z / T), T the run's fitted temperature.
- seq2seq: a CSV with ``text.source_column`` and ``text.target_column`` → exact match, teacher-forced
  token accuracy and corpus BLEU of the decoded outputs (the run's beam and length penalty).
- lm: a .txt file (the whole text) or a CSV's ``text.text_column`` (rows joined as in fit) → the
  stream cut into ``text.block_size`` windows → perplexity exp(mean token NLL) and token accuracy.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from nnrecipe.config import resolve_config
from nnrecipe.data import SeqSplit, Vocab, load_parallel_csv, load_text_csv, pad_batch
from nnrecipe.errors import UserError
from nnrecipe.evaluation import classification_split
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.run import Run
from nnrecipe.sequence_data import SeqPrepared, encode_split
from nnrecipe.sequence_model import lm_split, make_forward, seq2seq_split
from nnrecipe.sequence_decoding import decode_outputs, sample_text
from nnrecipe.training.loop import predict_logits


def is_sequence(run: Run) -> bool:
    return "sequence" in run.info


def _column(run: Run) -> str:
    text = (run.config or {}).get("text", {})
    kind = run.info["sequence"]["kind"]
    return (text.get("source_column") or "source") if kind == "seq2seq" else (text.get("text_column") or "text")


def _read_utf8(source: str, missing_fix: str) -> str:
    path = Path(source)
    if not path.is_file():
        raise UserError(f"file not found: {source}", "--data", missing_fix)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {source} ({type(exc).__name__})", "--data", "pass a UTF-8 text file") from None


def read_inputs(run: Run, source: str) -> list[str]:
    path = Path(source)
    raw = _read_utf8(source, "pass a CSV or a .txt file with one input per line")
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


def _labelled(run: Run, source: str) -> tuple[SeqSplit, str | None]:
    """The rows of `source` as fit's SeqSplit for this run's kind (classify: labels checked against
    the run's classes), and the columns read (None for a whole .txt file)."""
    text, kind = (run.config or {}).get("text", {}), run.info["sequence"]["kind"]
    if kind == "classify":
        columns = ((text.get("text_column") or "text"), (text.get("label_column") or "label"))
        texts, labels = load_text_csv(source, text_column=columns[0], label_column=columns[1])
        unknown = sorted(set(labels) - set(run.class_names))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3
                                                              else "")
            raise UserError(f"labels {shown} are not classes of this run ({', '.join(run.class_names)})", source,
                            "keep only rows whose label the run was trained on")
        return SeqSplit(texts, labels=labels), "/".join(columns)
    if kind == "seq2seq":
        columns = ((text.get("source_column") or "source"), text.get("target_column", "target"))
        sources, targets = load_parallel_csv(source, source_column=columns[0], target_column=columns[1])
        return SeqSplit(sources, targets=targets), "/".join(columns)
    if Path(source).suffix.lower() == ".csv":
        column = (text.get("text_column") or "text")
        # one column, read through the labelled reader for its header/empty-cell checks
        return SeqSplit(load_text_csv(source, text_column=column, label_column=column)[0]), column
    return SeqSplit([read_text(source)]), None


def read_text(source: str) -> str:
    raw = _read_utf8(source, "pass a UTF-8 text file or a CSV")
    if not raw.strip():
        raise UserError(f"no text in {source}", "--data", "pass a file with the text to score")
    return raw


def evaluate_sequences(run: Run, source: str) -> dict:
    """Metrics of a sequence run on labelled text `source` (see the module docstring); the keys are
    those of the run's metrics.json "test" block, plus ``kind``, ``columns`` (None for a .txt) and
    ``rows`` (lm: ``windows``)."""
    seq, arch = run.info["sequence"], run.info["architecture"]
    kind = seq["kind"]
    cfg = resolve_config(extra=run.config)  # text.max_len, block_size, beam, … as fit used them
    split, columns = _labelled(run, source)
    src = Vocab.from_dict(seq["src_vocab"])
    tgt = Vocab.from_dict(seq["tgt_vocab"]) if seq.get("tgt_vocab") else None
    X, y = encode_split(split, kind, src, tgt, run.class_names, max_len=cfg.text.max_len,
                        block_size=cfg.text.block_size)
    model = run.model.eval()
    if kind == "classify":
        result = classification_split(model, X, y, run.class_names, run.temperature, cfg.calibration.ece_bins)
    elif kind == "lm":
        result = lm_split(model, X, y, make_forward(arch, cfg))
    else:
        data = SeqPrepared(name=str(source), kind=kind, level=src.level, src_vocab=src, tgt_vocab=tgt,
                           class_names=None, tensors={"eval": (X, y)}, texts={"eval": split})
        result = seq2seq_split(model, arch, data, data.tensors, "eval", cfg, make_forward(arch, cfg))
        result.pop("attention_example", None)  # a heatmap's numbers: the report draws it from fit's run
    counted = {"windows": int(X.shape[0])} if kind == "lm" else {"rows": len(split.sources)}
    return {**result, **counted, "columns": columns, "kind": kind}


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
