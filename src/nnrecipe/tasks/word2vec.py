"""Word vectors (`nnrecipe.word_vectors` has the sparse SGD loop, the queries and vectors.txt;
`nnrecipe.models.word2vec` the formulas).

What is particular: the loop is word2vec.c's, not the Trainer's (plain SGD on the summed
negative-sampling loss over pairs generated per chunk, the LR falling with the share of corpus
words processed), so the task hands the driver its own `Loop.run`; it gets the driver's
per-epoch checkpoints and divergence path (an epoch with a non-finite loss is undone, the run is
written with the weights from before it, and the fit ends as diverged). Throughput is in corpus
words per second; the run holds vectors.txt and, with ``word2vec.analogies``, analogy accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nnrecipe.config import Config
from nnrecipe.data.corpus import PREFIX, WordVocab, encode_corpus, load_corpus, read_analogies
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.models.word2vec import Word2Vec
from nnrecipe.prepare import Provided
from nnrecipe.run import Run
from nnrecipe.tasks.base import ONE_PROCESS, Evaluated, Fitted, Loop, Member, Task
from nnrecipe.word_vectors import (DEFAULT_LR, SPARSE_FROM, WordVectors, intra_op_threads, logger, score_analogies,
                             train_word2vec, write_run_files)


@dataclass
class Corpus:
    name: str
    vocab: WordVocab
    ids: torch.Tensor  # the corpus as vocabulary ids
    sentence: torch.Tensor  # the sentence each token belongs to (windows stop at its ends)
    analogy_source: str | None
    questions: dict | None


class Word2VecTask(Task):
    name = "word2vec"
    commands = frozenset({"similar", "analogy", "evaluate", "embed"})
    holds = "word2vec run (word vectors, not a predictor)"
    instead = ("use `nnrecipe similar`, `nnrecipe analogy`, `nnrecipe evaluate RUN --analogies FILE` or "
               "`nnrecipe embed RUN`")

    def load(self, run_dir, info: dict, *, model=None) -> Run:
        raise UserError("a word2vec run holds word vectors, not a predictor", str(run_dir), self.instead)
    data_parallel = False
    why_not_parallel = ONE_PROCESS
    profiles = False  # its sparse SGD loop is not the Trainer's steps

    def check(self, cfg: Config) -> None:
        if cfg.data.lazy:
            raise UserError("data.lazy streams image folders for classifiers; model 'word2vec' reads its "
                            "data in memory", "data.lazy", "drop --set data.lazy=true")

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> Corpus:
        w = cfg.word2vec
        source = w.analogies or (cfg.data.source if cfg.data.source == f"{PREFIX}synthetic" else None)
        questions = read_analogies(source) if source else None  # fail before training
        sentences, name = load_corpus(cfg.data.source)
        vocab = WordVocab.build(sentences, min_count=w.min_count, max_size=w.max_vocab)
        ids, sentence = encode_corpus(sentences, vocab)
        return Corpus(name, vocab, ids, sentence, source, questions)

    def build(self, cfg: Config, data: Corpus, member: Member):
        # sparse gradients touch only a batch's rows; a dense V×D gradient per step costs more once
        # V·D passes ~10⁶ (measured: 8× slower at V = 10⁵, D = 100; slightly faster at V = 500)
        w = cfg.word2vec
        return Word2Vec(len(data.vocab), w.dim, sparse=len(data.vocab) * w.dim >= SPARSE_FROM).to(member.device)

    def loop(self, cfg: Config, model, data: Corpus, member: Member) -> Loop:
        w, epochs = cfg.word2vec, cfg.train.epochs

        def run(member: Member, checkpoints, progress: bool) -> Fitted:
            def log(r: dict) -> None:  # INFO on word_vectors' logger: `nnrecipe fit` prints it on stderr
                logger.info("epoch %d/%d  loss %.4f  lr %.2e  %s words/s", r["epoch"], epochs, r["train_loss"],
                            r["lr"], f"{data.ids.numel() / r['seconds']:,.0f}")

            # per-step tensors are small (batch × (1+k) × D): on a busy 2-core machine, two OpenMP threads
            # ran the synthetic fit 18× slower than one (each op waits for the descheduled thread)
            with intra_op_threads(w.threads):
                rows = train_word2vec(model, data.ids, data.sentence, torch.tensor(data.vocab.counts), sg=bool(w.sg),
                                      window=w.window, negative=w.negative, ns_exponent=w.ns_exponent,
                                      sample=w.sample, lr=w.lr or DEFAULT_LR[w.sg], min_lr_factor=w.min_lr_factor,
                                      batch_size=w.batch_size, epochs=epochs,
                                      generator=torch.Generator().manual_seed(member.seed), device=member.device,
                                      on_epoch=log if progress else None, checkpoint=checkpoints, resume=checkpoints.resume)
            last = rows[-1]["train_loss"]
            diverged = (None if math.isfinite(last) else
                        TrainingDiverged(sum(r["examples"] for r in rows) // w.batch_size, len(rows), last))
            return Fitted(trainer=None, rows=rows, logs={"epochs_run": len(rows)}, diverged=diverged,
                          train_seconds=checkpoints.elapsed_before)
        return Loop(train=(data.ids, None), val=None, run=run)

    def evaluate(self, cfg: Config, model, data: Corpus, fitted: Fitted, member: Member) -> Evaluated:
        w, rows = cfg.word2vec, fitted.rows
        loop_seconds = sum(r["seconds"] for r in rows)  # epochs only (building SGD imports torch._dynamo: seconds)
        last = rows[-1]["train_loss"]
        model = model.cpu().eval()
        vectors = WordVectors(data.vocab.words, model.vectors.clone())
        metrics = {"task": "embedding", "model": "word2vec", "architecture": "skip-gram" if w.sg else "cbow",
                   "data": data.name, "vocab_size": len(data.vocab), "dim": w.dim, "corpus_words": data.ids.numel(),
                   "lr": w.lr or DEFAULT_LR[w.sg],
                   "status": "ok" if math.isfinite(last) else f"diverged: loss {last} in epoch {len(rows)}",
                   "final_loss": last, "train_seconds": loop_seconds,
                   "total_seconds": fitted.train_seconds,
                   "words_per_second": len(rows) * data.ids.numel() / loop_seconds,
                   "examples_per_second": sum(r["examples"] for r in rows) / loop_seconds,
                   "examples": "positive pairs" if w.sg else "windows"}
        if data.questions is not None:
            metrics["analogies"] = {"file": data.analogy_source, **score_analogies(vectors, data.questions)}
        info = {"task": "embedding", "model": "word2vec", "data": data.name, "vectors": "vectors.txt",
                "word2vec": {"sg": w.sg, "dim": w.dim, "window": w.window, "negative": w.negative},
                "vocab": data.vocab.words, "counts": data.vocab.counts}
        return Evaluated(metrics=metrics, info=info, model=model)

    def write(self, run: Run, fitted: Fitted, data: Corpus, staging, cfg: Config) -> None:
        write_run_files(run, fitted.rows, cfg, WordVectors(data.vocab.words, run.model.vectors.clone()), staging)
