"""GANs on images (`nnrecipe.ganfit` has the two players' step, the snapshots and the figures;
`nnrecipe.genfit` the images in [0, 1], the judge classifier and the run's files).

What is particular: two players with an optimizer each, no validation loss (every epoch runs and
the last weights are kept), a fixed noise batch drawn at ``generative.snapshots`` epochs, and the
judge's scores of generated images next to real ones and noise.
"""

from __future__ import annotations


import torch

from nnrecipe.config import Config
from nnrecipe.ganfit import COLUMNS, draw, figures, snapshot_epochs, train_gan
from nnrecipe.genfit import (ImageData, load_generative, build_generative, check_generative, generative_architecture, load_images,
                             run_info, score_samples, write_files)
from nnrecipe.prepare import Provided
from nnrecipe.rundir import atomic_dir
from nnrecipe.run import Run
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member, Task
from nnrecipe.training.callbacks import ProgressBar


class GanTask(Task):
    name = "gan"
    commands = frozenset({"sample"})
    holds = "generative model"
    instead = "draw images with `nnrecipe sample RUN_DIR --out grid.png`"

    def load(self, run_dir, info: dict, *, model=None) -> Run:
        return load_generative(run_dir, info)
    data_parallel = False
    why_not_parallel = ("only classifier/regressor fits (tabular, image and sequence models, ensembles) train "
                        "on several processes")

    def check(self, cfg: Config) -> None:
        check_generative(cfg)

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> ImageData:
        return load_images(cfg, device)

    def build(self, cfg: Config, data: ImageData, member: Member):
        return build_generative(generative_architecture(cfg, data.image_shape)).to(member.device)

    def loop(self, cfg: Config, model, data: ImageData, member: Member) -> Loop:
        g = cfg.generative
        fixed = torch.randn(g.grid ** 2, g.latent_dim,
                            generator=torch.Generator().manual_seed(member.seed + 1)).to(member.device)
        extras = {"fixed": fixed, "fit": member.fit, "progress": member.progress}

        def run(member: Member, checkpoints, progress: bool) -> Fitted:
            bar = ProgressBar(cfg.train.epochs, description=f"fit {data.name} gan") if progress else None
            if bar is not None:
                bar.on_fit_begin(None, {})
            try:
                rows, snapshots = train_gan(model, data.X["train"], cfg, epochs=cfg.train.epochs, progress_bar=bar,
                                            fixed_noise=fixed, keep=snapshot_epochs(cfg.train.epochs, g.snapshots),
                                            checkpoint=checkpoints, resume=checkpoints.resume, base_lr=member.base_lr)
            finally:
                if bar is not None:
                    bar.on_fit_end(None, {})
            extras["snapshots"] = snapshots
            return Fitted(trainer=None, rows=rows, logs={"epochs_run": len(rows)}, diverged=None,
                          train_seconds=checkpoints.elapsed_before, columns=COLUMNS, extras=extras)
        return Loop(train=(data.X["train"], None), val=None, run=run, extras=extras)

    def evaluate(self, cfg: Config, model, data: ImageData, fitted: Fitted, member: Member) -> Evaluated:
        g, last = cfg.generative, fitted.rows[-1]
        metrics = {"task": "generative", "model": "gan", "arch": g.arch,
                   "final": {k: last[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")},
                   "labels": {"real": g.real_label, "fake": g.fake_label}, "pixel_range": list(data.pixel_range)}
        spec = generative_architecture(cfg, data.image_shape)
        return Evaluated(metrics=metrics, info=run_info(spec, data), model=model)

    def write(self, run: Run, fitted: Fitted, data: ImageData, staging, cfg: Config) -> None:
        model, metrics, extras = run.model, run.metrics, fitted.extras
        with atomic_dir(staging) as tmp:
            scores = score_samples(cfg, data, model, tmp, progress=extras["progress"], fit=extras["fit"])
            if scores is not None:
                metrics["scores"] = scores
            metrics["plots"] = figures(fitted.rows, extras["snapshots"], draw(model, extras["fixed"]), cfg,
                                       tmp / "plots")
            model.cpu()
            write_files(tmp, run, cfg, fitted.rows, COLUMNS)


__all__ = ["GanTask"]
