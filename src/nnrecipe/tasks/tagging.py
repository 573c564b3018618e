"""Sequence tagging: one tag per token, aligned (`nnrecipe.tagging_data` has the data and the
architecture, `nnrecipe.tagging` the metrics and the use of a finished run).

What is particular to this family: a token vocabulary built on the training split and the tag set
saved in model.json (``"tagging"``), a many-to-many model whose [B, T, K + 1] logits meet the
driver's token cross-entropy (pad id 0 ignored, as the sequence family's language models), under
torchrun each process's gradient weighted by its share of the batch's tagged tokens, and the
tagging metrics (token accuracy, macro F1 over tags, entity F1 for BIO tags) on val and test.
"""

from __future__ import annotations

import torch

from nnrecipe.config import Config
from nnrecipe.errors import UserError
from nnrecipe.prepare import Provided
from nnrecipe.run import Run
from nnrecipe.tagging import evaluate_tags, predict_tags, split_metrics
from nnrecipe.tagging_data import TaggingPrepared, prepare_tagging, tagging_architecture, token_weights
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member, Task
from nnrecipe.training.buckets import LengthBuckets
from nnrecipe.training.setup import make_model


class TaggingData:
    def __init__(self, prepared: TaggingPrepared, device: torch.device):
        self.prepared, self.name = prepared, prepared.name
        self.tensors = {k: (X.to(device), y.to(device)) for k, (X, y) in prepared.tensors.items()}


class TaggingTask(Task):
    name = "tagging"
    commands = frozenset({"predict", "evaluate"})
    holds = "sequence tagger"
    instead = "use `nnrecipe predict RUN_DIR --data FILE` or `nnrecipe evaluate RUN_DIR --data FILE`"

    def check(self, cfg: Config) -> None:
        if cfg.data.lazy or cfg.transfer.init_from:
            raise UserError("data.lazy and transfer.init_from are for image and tabular models", "data/transfer",
                            "drop them for tagging models")

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> TaggingData:
        if provided.data is not None or provided.model is not None:
            raise UserError("tagging trains on a file or seq:tagging with a built-in model", "data/model",
                            "pass --data FILE (or seq:tagging) and --model lstm|gru|rnn|transformer")
        return TaggingData(prepare_tagging(cfg), device)

    def build(self, cfg: Config, data: TaggingData, member: Member):
        X = data.tensors["train"][0]
        return make_model(cfg, tagging_architecture(cfg, data.prepared), device=member.device,
                          init_batch=X[: cfg.train.batch_size])

    def loop(self, cfg: Config, model, data: TaggingData, member: Member) -> Loop:
        X, y = data.tensors["train"]
        if member.ctx is not None:  # each rank weighs its share of the batch's tagged tokens
            member.ctx.row_weights = token_weights(y)
        return Loop(train=(X, y), val=data.tensors["val"], loss=member.provided.loss, diagnose="classification",
                    batching=LengthBuckets(X, y) if cfg.text.bucketing else None,  # the sequence family's buckets
                    extras={"architecture": tagging_architecture(cfg, data.prepared)})

    def evaluate(self, cfg: Config, model, data: TaggingData, fitted: Fitted, member: Member) -> Evaluated:
        d, arch = data.prepared, fitted.extras["architecture"]
        metrics = {"task": "tagging", "model": arch["name"], "vocab_size": len(d.vocab), "tags": len(d.tags),
                   "scheme": d.scheme, "bidirectional": arch.get("bidirectional", True),
                   "split_sizes": {k: len(v) for k, v in d.splits.items()}}
        for split in ("test", "val"):
            X, y = data.tensors[split]
            metrics[split] = split_metrics(model, X, y, tags=d.tags, scheme=d.scheme, tokens=d.splits[split].tokens)
        info = {"task": "tagging", "architecture": arch, "tagging": d.info(), "data": d.name,
                "class_names": d.tags}
        return Evaluated(metrics=metrics, info=info, model=model.cpu().eval())

    def predict(self, run: Run, source: str) -> str:
        return predict_tags(run, source)

    def evaluate_source(self, run: Run, source: str) -> dict:
        return evaluate_tags(run, source)
