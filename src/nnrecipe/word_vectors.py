"""The word2vec loop (word2vec.c's sparse SGD) and what a run of word vectors answers:
nearest words, analogies and analogy-question accuracy.

Training (models/word2vec.py has the formulas): each epoch the corpus is subsampled, cut into
chunks of `CHUNK_TOKENS` tokens, turned into skip-gram pairs or CBOW windows with tensor ops,
shuffled within the chunk and fed in batches of ``word2vec.batch_size`` to plain SGD on the
*summed* loss, so each pair moves the vectors by lr·∇ℓ as in word2vec.c. The LR falls linearly with
the share of corpus words processed, from ``lr`` to ``lr·min_lr_factor`` (word2vec.c's schedule).
The ``optimizer``/``schedule``/``clip`` sections do not apply. Throughput is reported as corpus
words (in-vocabulary tokens before subsampling, word2vec.c's count) per second of training.

Queries use the target vectors W, unit-normalized (x̂ = x/‖x‖):
- similar(w): the words with the largest cos(x̂, ŵ), w excluded.
- analogy(a, b, c) = 3CosAdd (Mikolov et al. 2013; Levy & Goldberg 2014): the words x with the
  largest cos(x̂, â − b̂ + ĉ), a, b and c excluded; "king man woman" → queen.
- An analogy file line ``a b c d`` asks analogy(b, a, c) == d; a question with a word outside the
  vocabulary is skipped (counted, not scored); accuracy = correct / answered, per section and overall.

With ``progress``, each epoch is logged at INFO on the ``nnrecipe.word_vectors`` logger (``epoch e/E  loss
…  lr …  N words/s``), which `nnrecipe fit` prints on stderr.

The run directory holds the usual files plus ``vectors.txt`` in word2vec's text format: a first
line "V D", then one line "word v1 … vD" per word, most frequent first.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from nnrecipe.config import Config, save_config
from nnrecipe.data.corpus import read_analogies
from nnrecipe.errors import UserError
from nnrecipe.models.word2vec import (Word2Vec, cbow_windows, draw_negatives, keep_probability,
                                      noise_distribution, skipgram_pairs)
from nnrecipe.rundir import atomic_dir, write_history
from nnrecipe.run import Run, save_model
from nnrecipe.training.checkpoint import capture_rng, restore_rng
from nnrecipe.report.plots import plot_run

CHUNK_TOKENS = 1_000_000  # tokens turned into pairs at once (bounds memory: ~2·window pairs per token)
DEFAULT_LR = {1: 0.025, 0: 0.05}  # word2vec.c: skip-gram, CBOW
SPARSE_FROM = 1_000_000  # V·D from which the embeddings use sparse gradients

logger = logging.getLogger(__name__)  # epoch lines (INFO) while `fit(progress=True)` trains


@dataclass
class WordVectors:
    words: list[str]
    vectors: torch.Tensor  # [V, D] float32
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}
        self.unit = self.vectors / self.vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def id(self, word: str, where: str) -> int:
        key = word.lower()
        if key not in self.index:
            close = difflib.get_close_matches(key, self.words, n=3)
            raise UserError(f"'{word}' is not in the vocabulary ({len(self.words)} words)", where,
                            f"try {', '.join(close)}" if close else "pick a word seen at least min_count times")
        return self.index[key]

    def _top(self, query: torch.Tensor, exclude: list[int], top: int) -> list[tuple[str, float]]:
        if top < 1:
            raise UserError(f"top must be >= 1, got {top}", "--top", "ask for at least one word")
        scores = self.unit @ (query / query.norm().clamp_min(1e-12))
        scores[exclude] = -float("inf")
        k = min(top, len(self.words) - len(set(exclude)))
        values, ids = scores.topk(max(k, 0))
        return [(self.words[i], float(v)) for v, i in zip(values.tolist(), ids.tolist())]

    def similar(self, word: str, top: int = 10, *, where: str = "word") -> list[tuple[str, float]]:
        i = self.id(word, where)
        return self._top(self.unit[i], [i], top)

    def neighbours(self, words, *, top: int, min_similarity: float) -> dict[str, list[str]]:
        """{word: its `top` nearest words (cosine, nearest first) with cos ≥ min_similarity} for the
        `words` in the vocabulary (EDA's synonyms from word vectors); words without any are left out."""
        known = [w for w in words if w in self.index]
        out: dict[str, list[str]] = {}
        for start in range(0, len(known), 1024):  # [chunk, V] scores at a time
            chunk = known[start:start + 1024]
            ids = torch.tensor([self.index[w] for w in chunk])
            scores = self.unit[ids] @ self.unit.T
            scores[torch.arange(len(ids)), ids] = -float("inf")
            values, nearest = scores.topk(min(top, len(self.words) - 1), dim=1)
            for word, vs, ns in zip(chunk, values.tolist(), nearest.tolist()):
                kept = [self.words[n] for v, n in zip(vs, ns) if v >= min_similarity]
                if kept:
                    out[word] = kept
        return out

    def analogy(self, a: str, b: str, c: str, top: int = 10, *, where: str = "words") -> list[tuple[str, float]]:
        ia, ib, ic = (self.id(w, where) for w in (a, b, c))
        return self._top(self.unit[ia] - self.unit[ib] + self.unit[ic], [ia, ib, ic], top)


def write_word2vec_text(path: Path, words: list[str], vectors: torch.Tensor) -> None:
    rows = vectors.detach().cpu().double().tolist()
    with Path(path).open("w", encoding="utf-8") as fh:
        fh.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, row in zip(words, rows):
            fh.write(word + " " + " ".join(format(x, ".7g") for x in row) + "\n")


def read_word2vec_text(path: str | Path) -> WordVectors:
    """Parse word2vec's text format (first line "V D", then "word v1 … vD")."""
    path = Path(path)
    bad = UserError(f"{path.name} is not in word2vec text format", str(path), "first line 'V D', then 'word v1 ... vD'")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        n, dim = (int(v) for v in lines[0].split())
        rows = [line.rstrip().split(" ") for line in lines[1:n + 1]]
        vectors = torch.tensor([[float(v) for v in r[1:]] for r in rows], dtype=torch.float32)
    except FileNotFoundError:
        raise UserError(f"missing {path.name}", str(path.parent), "pass a word2vec run directory") from None
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        raise bad from None
    if len(rows) != n or vectors.shape != (n, dim):
        raise bad
    return WordVectors([r[0] for r in rows], vectors)


def load_vectors(run_dir: str | Path) -> WordVectors:
    """The target vectors W of a word2vec run, with its vocabulary."""
    run_dir = Path(run_dir)
    fix = "pass a directory written by `nnrecipe fit --model word2vec`"
    try:
        info = json.loads((run_dir / "model.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"not a readable word2vec run ({type(exc).__name__})", str(run_dir), fix) from None
    if not isinstance(info, dict) or info.get("task") != "embedding":
        task = info.get("task") if isinstance(info, dict) else None
        raise UserError(f"not a word2vec run (its model.json says task {task!r})", str(run_dir), fix)
    try:
        weights = load_file(str(run_dir / "model.safetensors"))["target.weight"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"not a readable word2vec run ({type(exc).__name__})", str(run_dir), fix) from None
    if len(info.get("vocab", [])) != len(weights):
        raise UserError("not a word2vec run", str(run_dir), fix)
    return WordVectors(info["vocab"], weights.float())


def similar(run_dir: str | Path, word: str, top: int = 10) -> list[tuple[str, float]]:
    """(word, cosine) of the `top` nearest words to `word`, itself excluded."""
    return load_vectors(run_dir).similar(word, top, where=str(run_dir))


def analogy(run_dir: str | Path, a: str, b: str, c: str, top: int = 10) -> list[tuple[str, float]]:
    """(word, cosine) nearest to â − b̂ + ĉ (3CosAdd), a, b, c excluded: analogy(king, man, woman)."""
    return load_vectors(run_dir).analogy(a, b, c, top, where=str(run_dir))


def _accuracy(correct: int, answered: int, skipped: int) -> dict:
    return {"accuracy": correct / answered if answered else None, "correct": correct,
            "answered": answered, "skipped": skipped}


def score_analogies(vectors: WordVectors, sections: dict[str, list[tuple[str, str, str, str]]]) -> dict:
    """Per-section and overall accuracy of "a b c d" questions (prediction: analogy(b, a, c))."""
    result, total = {}, [0, 0, 0]
    for name, questions in sections.items():
        known = [q for q in questions if all(w in vectors.index for w in q)]
        correct = 0
        if known:
            ids = torch.tensor([[vectors.index[w] for w in q] for q in known])
            for chunk in ids.split(1024):
                a, b, c, d = chunk.unbind(1)
                scores = (vectors.unit[b] - vectors.unit[a] + vectors.unit[c]) @ vectors.unit.T
                rows = torch.arange(len(chunk))
                for col in (a, b, c):
                    scores[rows, col] = -float("inf")
                correct += int((scores.argmax(1) == d).sum())
        result[name] = _accuracy(correct, len(known), len(questions) - len(known))
        total = [total[0] + correct, total[1] + len(known), total[2] + len(questions) - len(known)]
    return {"overall": _accuracy(*total), "sections": result}


def evaluate_analogies(run_dir: str | Path, questions: str | Path) -> dict:
    """Accuracy of a run's vectors on a questions-words file (or ``w2v:synthetic``)."""
    return {"file": str(questions), **score_analogies(load_vectors(run_dir), read_analogies(questions))}


@contextmanager
def intra_op_threads(n: int | None):
    """torch's intra-op thread count set to `n` inside the block (None: unchanged), restored after."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_word2vec(model: Word2Vec, ids: torch.Tensor, sentence: torch.Tensor, counts: torch.Tensor, *,
                   sg: bool, window: int, negative: int, ns_exponent: float, sample: float, lr: float,
                   min_lr_factor: float, batch_size: int, epochs: int, generator: torch.Generator,
                   device: torch.device, on_epoch=None, checkpoint=None, resume: dict | None = None) -> list[dict]:
    """SGD on the summed negative-sampling loss; returns one history row per epoch. An epoch whose
    mean loss is not finite is undone (the weights from before it are restored) and ends training.
    `checkpoint(state)` is called after every finite epoch; `resume` is such a state to continue from
    (plain SGD has no optimizer state: the weights, progress and RNG states are all there is)."""
    cdf = noise_distribution(counts, ns_exponent).cumsum(0)
    keep = keep_probability(counts, sample)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    total, done, rows, first = epochs * ids.numel(), 0, [], 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        done, rows, first = int(resume["done"]), [dict(r) for r in resume["rows"]], int(resume["epoch"]) + 1
        restore_rng(resume["rng"], generator)
    for epoch in range(first, epochs + 1):
        started, loss_sum, examples = time.perf_counter(), torch.zeros((), device=device), 0
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}  # V×D, cheap per epoch
        for start in range(0, ids.numel(), CHUNK_TOKENS):
            chunk, sent = ids[start:start + CHUNK_TOKENS], sentence[start:start + CHUNK_TOKENS]
            kept = torch.rand(chunk.numel(), generator=generator, dtype=torch.float64) < keep[chunk]
            units = (skipgram_pairs if sg else cbow_windows)(chunk[kept], sent[kept], window, generator)
            n = units[0].numel()
            order = torch.randperm(n, generator=generator)
            units = [u[order].to(device) for u in units]
            for s in range(0, n, batch_size):
                step_lr = lr * max(min_lr_factor, 1 - (done + chunk.numel() * s / n) / total)
                for group in optimizer.param_groups:
                    group["lr"] = step_lr
                batch = [u[s:s + batch_size] for u in units]
                negatives = draw_negatives(cdf, (len(batch[0]), negative), generator).to(device)
                loss = (model.skipgram_loss(batch[0], batch[1], negatives) if sg
                        else model.cbow_loss(batch[1], batch[2], batch[0], negatives))
                optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimizer.step()
                loss_sum += loss.detach().sum()  # no host sync per step
            examples += n
            done += chunk.numel()
        row = {"epoch": epoch, "train_loss": float(loss_sum) / max(examples, 1),
               "lr": lr * max(min_lr_factor, 1 - done / total), "seconds": time.perf_counter() - started,
               "examples": examples}
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if not math.isfinite(row["train_loss"]):
            model.load_state_dict(before)
            break
        if checkpoint is not None:
            checkpoint({"model": model.state_dict(), "epoch": epoch, "done": done, "rows": rows,
                        "rng": capture_rng(generator)})
    return rows


def write_run_files(run: Run, rows: list[dict], cfg: Config, vectors: WordVectors, final: Path) -> Path:
    with atomic_dir(final) as tmp:
        save_config(cfg, tmp / "config.yaml")
        write_history([{k: r[k] for k in ("epoch", "train_loss", "lr", "seconds")} for r in rows],
                      tmp / "history.csv")
        (tmp / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        save_model(run, tmp)
        write_word2vec_text(tmp / "vectors.txt", vectors.words, vectors.vectors)
        plot_run(tmp)
    return Path(final)


__all__ = ["WordVectors", "analogy", "evaluate_analogies", "intra_op_threads", "load_vectors", "read_word2vec_text",
           "score_analogies", "similar", "train_word2vec", "write_run_files", "write_word2vec_text"]
