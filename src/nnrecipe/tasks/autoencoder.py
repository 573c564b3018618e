"""Autoencoders and VAEs on images (`nnrecipe.aefit` has the losses, metrics and figures;
`nnrecipe.genfit` the images in [0, 1], the judge classifier and the run's files).

What is particular: the inputs are the targets, the forward packs [logits, μ, log σ²] per row so
the Trainer needs no special case, the validation reconstruction and KL are extra history
columns, a VAE's ELBO is measured at init and after training, and the run holds reconstructions,
interpolations, samples and the latent map instead of the tabular report.
"""

from __future__ import annotations

import math

import torch

from nnrecipe.aefit import EXTRA_COLUMNS, ValidationTerms, evaluate_autoencoder, figures, make_loss, pack_forward
from nnrecipe.config import Config
from nnrecipe.errors import TrainingDiverged
from nnrecipe.genfit import (ImageData, load_generative, build_generative, check_generative, generative_architecture, load_images,
                             run_info, score_samples, write_files)
from nnrecipe.prepare import Provided
from nnrecipe.rundir import atomic_dir
from nnrecipe.run import Run
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member, Task
from nnrecipe.training.callbacks import History


class AutoencoderTask(Task):
    name = "autoencoder"
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
        at_init = evaluate_autoencoder(model, data.X["test"], seed=member.seed) if model.variational else None
        return Loop(train=(data.X["train"], data.X["train"]), val=(data.X["val"], data.X["val"]),
                    loss_task="regression", forward=pack_forward,
                    loss=make_loss(variational=model.variational, beta=g.beta, recon_loss=g.recon_loss),
                    callbacks=[ValidationTerms(data.X["val"], model.variational, g.recon_loss)],
                    columns=History.columns + EXTRA_COLUMNS,
                    extras={"at_init": at_init, "fit": member.fit, "progress": member.progress})

    def evaluate(self, cfg: Config, model, data: ImageData, fitted: Fitted, member: Member) -> Evaluated:
        test = evaluate_autoencoder(model, data.X["test"], seed=member.seed)
        at_init = fitted.extras["at_init"]
        if at_init is not None:
            test["elbo_at_init"] = at_init["elbo"]
        if not all(math.isfinite(v) for v in test.values() if isinstance(v, float)):
            raise TrainingDiverged(fitted.trainer.step, fitted.logs["epochs_run"], math.nan)
        spec = generative_architecture(cfg, data.image_shape)
        metrics = {"task": "generative", "model": cfg.model.name, "arch": cfg.generative.arch, "test": test,
                   "val": evaluate_autoencoder(model, data.X["val"], seed=member.seed),
                   "pixel_range": list(data.pixel_range)}
        return Evaluated(metrics=metrics, info=run_info(spec, data), model=model)

    def write(self, run: Run, fitted: Fitted, data: ImageData, staging, cfg: Config) -> None:
        model, metrics = run.model, run.metrics
        with atomic_dir(staging) as tmp:
            scores = (score_samples(cfg, data, model, tmp, progress=fitted.extras["progress"], fit=fitted.extras["fit"])
                      if model.variational else None)
            if scores is not None:
                metrics["scores"] = scores
            metrics["plots"] = figures(model, data, cfg, tmp / "plots") + ["learning_curves.png"]
            model.cpu()
            write_files(tmp, run, cfg, fitted.rows, fitted.columns)
