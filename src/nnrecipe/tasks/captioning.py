"""Image captioning with attention, "Show, Attend and Tell" (Xu et al. 2015): `nnrecipe.models.captioner`
has the model, `nnrecipe.caption_data` the data, `nnrecipe.captioning` the loss, decoding, metrics and
the use of a finished run.

What is particular to this family: images held once and gathered by index per (image, caption) row,
a word vocabulary built on the training captions and saved in model.json (``"captioning"``, with
the images' channel statistics), a teacher-forced forward that packs the doubly stochastic attention
penalty next to the logits so the driver's Trainer runs it unchanged, under torchrun each process
weighted by its share of the batch's words, and BLEU-1…4 / exact match of beam-searched captions
against every reference; the run adds plots/captions.png (sample images, caption, attention per word).
No augmentation: a flip or a crop would change what the caption says.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nnrecipe.caption_data import CaptionPrepared, captioner_architecture, prepare_captions, token_weights
from nnrecipe.captioning import (evaluate_captions, load_captioner, make_forward, make_loss, predict_captions,
                                 samples, split_metrics)
from nnrecipe.config import Config
from nnrecipe.errors import UserError
from nnrecipe.prepare import Provided
from nnrecipe.report.caption_plots import plot_caption_attention
from nnrecipe.run import Run
from nnrecipe.rundir import write_run
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member, Task
from nnrecipe.training.setup import make_model


class CaptionData:
    def __init__(self, prepared: CaptionPrepared, device: torch.device):
        self.prepared, self.name = prepared, prepared.name
        self.images = prepared.images.to(device)
        self.rows = {k: ((index.to(device), tgt_in.to(device)), y.to(device))
                     for k, ((index, tgt_in), y) in prepared.rows.items()}

    def split_images(self, split: str) -> torch.Tensor:
        start = self.prepared.offsets[split]
        return self.images[start:start + len(self.prepared.splits[split].files)]


class CaptioningTask(Task):
    name = "captioning"
    commands = frozenset({"predict", "evaluate"})
    holds = "image captioner"
    instead = "use `nnrecipe predict RUN_DIR --data IMAGES` or `nnrecipe evaluate RUN_DIR --data CAPTIONS`"

    def check(self, cfg: Config) -> None:
        if cfg.model.name != "captioner":
            raise UserError(f"{cfg.data.source} holds captioned images; model '{cfg.model.name}' does not caption",
                            "--model", "use --model captioner (its encoder: caption.encoder cnn|resnet)")
        if cfg.transfer.init_from:
            raise UserError("transfer.init_from is for classifiers", "transfer.init_from",
                            "drop it for a captioner")
        if cfg.data.lazy or cfg.init.name == "lsuv":
            raise UserError("a captioner reads its images in memory and takes two inputs (LSUV calibrates one)",
                            "data.lazy/init.name", "drop data.lazy and use another init.name")

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> CaptionData:
        if provided.data is not None or provided.model is not None:
            raise UserError("a captioner trains on a captions folder, a COCO .json or cap:digits", "data/model",
                            "pass --data DIR|captions.json|cap:digits and --model captioner")
        return CaptionData(prepare_captions(cfg), device)

    def build(self, cfg: Config, data: CaptionData, member: Member):
        return make_model(cfg, captioner_architecture(cfg, data.prepared), device=member.device,
                          init_batch=data.images[: cfg.train.batch_size])

    def loop(self, cfg: Config, model, data: CaptionData, member: Member) -> Loop:
        X, y = data.rows["train"]
        if member.ctx is not None:  # each rank weighs its share of the batch's words
            member.ctx.row_weights = token_weights(y)
        loss = member.provided.loss or make_loss(attention_reg=cfg.caption.attention_reg,
                                                 label_smoothing=cfg.regularization.label_smoothing)
        return Loop(train=(X, y), val=data.rows["val"], loss=loss, diagnose="classification",
                    forward=make_forward(data.images, teacher_forcing=cfg.caption.teacher_forcing),
                    extras={"architecture": captioner_architecture(cfg, data.prepared)})

    def evaluate(self, cfg: Config, model, data: CaptionData, fitted: Fitted, member: Member) -> Evaluated:
        d, c = data.prepared, cfg.caption
        decoding = {"beam": c.beam, "length_penalty": c.length_penalty, "max_len": c.max_len}
        metrics = {"task": "captioning", "model": "captioner", "encoder": c.encoder, "cell": c.cell,
                   "vocab_size": len(d.vocab), "grid": list(model.grid),
                   "split_sizes": {k: len(v.files) for k, v in d.splits.items()}}
        for split in ("test", "val"):
            metrics[split] = split_metrics(model, data.split_images(split), d.splits[split], d.vocab, **decoding)
        metrics["samples"] = (samples(model, data.split_images("test"), d.splits["test"], d.vocab, c.samples,
                                      **decoding) if c.samples else [])
        info = {"task": "captioning", "architecture": fitted.extras["architecture"], "captioning": d.info(),
                "data": d.name, "decoding": decoding}
        return Evaluated(metrics=metrics, info=info, model=model.cpu().eval())

    def write(self, run: Run, fitted: Fitted, data: CaptionData, staging: Path, cfg: Config) -> None:
        shown = run.metrics.get("samples") or []
        test = data.prepared.splits["test"]

        def figures(tmp: Path) -> None:
            plot_caption_attention([test.images[s["index"]] for s in shown], shown, tmp / "plots" / "captions.png")
        write_run(run, fitted.rows, cfg, staging, health_rows=fitted.health_rows, figures=figures if shown else None)

    def load(self, run_dir: Path, info: dict, *, model=None) -> Run:
        return load_captioner(run_dir, info)

    def predict(self, run: Run, source: str) -> str:
        return predict_captions(run, source)

    def evaluate_source(self, run: Run, source: str) -> dict:
        return evaluate_captions(run, source)
