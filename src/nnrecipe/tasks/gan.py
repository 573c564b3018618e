"""The GAN task (`nnrecipe.models.gan`): its train step, snapshots, figures and run.

Each step (Goodfellow et al. 2014, Algorithm 1 with k = 1 and the non-saturating G loss):

    x ~ batch, z ~ N(0, I), x̃ = G(z)
    D step: minimize BCE(D(x), real_label) + BCE(D(x̃.detach()), fake_label)
    G step: minimize −log D(x̃)

The step is `GANStep`, the ``train_step`` of the project's `Trainer` (Keras 3's override): the
Trainer batches, writes the scheduled LR into both players' optimizers, stops on a NaN/Inf
statistic, drives the progress bar and checkpoints. G and D have their own optimizer built from
``optimizer.*`` (default for gan: Adam, lr 2e-4, β = (0.5, 0.999), no weight decay, constant LR:
DCGAN's settings), bundled as one `Optimizers`; each player's gradients are clipped inside the step
(``clip.*``, none by default). There is no validation loss for a GAN, so every epoch runs and the
last weights are kept. history.csv holds per epoch: d_loss, g_loss, d_real = mean D(x) and
d_fake = mean D(G(z)) (on the D step's batch, before its update; means over the epoch's images),
lr, seconds. The judge's scores (`nnrecipe.generative`) set generated images next to real ones and
noise. A fixed noise batch is drawn through G (eval mode) at ``generative.snapshots``
evenly spaced epochs (plots/samples_epoch_N.png, `Snapshots`) and at the end (plots/samples.png).

Checkpoints: the Trainer's (`nnrecipe.training.checkpoint`), after every epoch and every
``train.checkpoint_every_steps`` steps, hold G and D, both optimizers, the step and the position
in the epoch, the history rows, the snapshots so far and every RNG state (batch order; z is drawn
from torch's global RNG on the data's device, whose state is saved too), so ``nnrecipe fit
--resume`` continues an interrupted GAN, also mid-epoch, to the result of the uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import torch

from nnrecipe.config import Config, schedule_name
from nnrecipe.generative import (ImageData, generative_architecture, run_info, score_samples, write_files)
from nnrecipe.models.gan import GAN, discriminator_loss, generator_loss
from nnrecipe.report.genplots import plot_gan_curves, plot_image_grid
from nnrecipe.rundir import atomic_dir
from nnrecipe.run import Run
from nnrecipe.tasks.generative import GenerativeTask
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member
from nnrecipe.training.callbacks import Callback
from nnrecipe.training.clipping import AutoClip, clip_gradients
from nnrecipe.training.loop import Trainer
from nnrecipe.training.optim import Optimizers, build_optimizer
from nnrecipe.training.schedules import build_schedule

COLUMNS = ("epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "seconds")


def snapshot_epochs(epochs: int, count: int) -> list[int]:
    """`count` evenly spaced epochs in 1..epochs (the last included)."""
    if count <= 0:
        return []
    return sorted({int(round(e)) for e in np.linspace(1, epochs, min(count, epochs))})


class GANStep:
    """One step of Algorithm 1 (k = 1) as a `Trainer.train_step`: a D update, then a G update, each
    with its optimizer (``trainer.optimizer["d"]``, ``["g"]``) and the trainer's clipping (under
    autoclip each player has its own norm history, `autoclips`); returns
    [d_loss, g_loss, D(x) mean, D(G(z)) mean] on the device (no host sync)."""

    columns = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, *, real_label: float, fake_label: float, autoclips: dict[str, AutoClip] | None = None):
        self.real_label, self.fake_label = real_label, fake_label
        self.autoclips = autoclips or {}

    def __call__(self, trainer: Trainer, real: torch.Tensor, _targets) -> torch.Tensor:
        model: GAN = trainer.model
        G, D = model.generator, model.discriminator
        opt_g, opt_d = trainer.optimizer["g"], trainer.optimizer["d"]
        fake = G(torch.randn(len(real), model.latent_dim, device=real.device))
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, real_label=self.real_label, fake_label=self.fake_label)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        clip_gradients(list(D.parameters()), mode=trainer.clip_mode, threshold=trainer.clip_threshold,
                       autoclip=self.autoclips.get("d"))
        opt_d.step()
        g_loss = generator_loss(D(fake))  # D's fresh grads from here are cleared before its next step
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        clip_gradients(list(G.parameters()), mode=trainer.clip_mode, threshold=trainer.clip_threshold,
                       autoclip=self.autoclips.get("g"))
        opt_g.step()
        return torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                            torch.sigmoid(fake_logits.detach()).mean()])


class Snapshots(Callback):
    """G(`noise`) at the end of each epoch in `epochs`: ``images`` = {epoch: images on the CPU},
    saved and restored with the checkpoints."""

    order = 10  # after History (5), before the Checkpointer (30) saves the epoch

    def __init__(self, noise: torch.Tensor, *, epochs: list[int]):
        self.noise, self.epochs = noise, set(epochs)
        self.images: dict[int, torch.Tensor] = {}

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] in self.epochs:
            self.images[logs["epoch"]] = draw(trainer.model, self.noise)

    def state_dict(self) -> dict:
        return {f"epoch_{e}": images for e, images in self.images.items()}

    def load_state_dict(self, state: dict) -> None:
        self.images = {int(k.split("_")[1]): v.cpu() for k, v in state.items()}


def gan_trainer(model: GAN, cfg: Config, *, train_rows: int, callbacks: list[Callback], base_lr: float) -> Trainer:
    """A `Trainer` running `GANStep` with G's and D's optimizers and the LR schedule of `cfg` from η₀ = `base_lr`."""
    steps = max(1, -(-train_rows // cfg.train.batch_size))
    schedule = build_schedule(cfg.schedule.model_copy(update={"name": schedule_name(cfg)}), base_lr=base_lr,
                              total_steps=steps * cfg.train.epochs)
    optimizers = Optimizers(g=build_optimizer(model.generator, cfg.optimizer),
                            d=build_optimizer(model.discriminator, cfg.optimizer))
    g = cfg.generative
    autoclips = {"d": AutoClip(cfg.clip.percentile), "g": AutoClip(cfg.clip.percentile)} \
        if cfg.clip.name == "autoclip" else {}
    return Trainer(model=model, loss_fn=None, optimizer=optimizers, schedule=schedule, classification=False,
                   clip_mode=cfg.clip.name, clip_threshold=cfg.clip.threshold,
                   callbacks=[*callbacks, *autoclips.values()],  # checkpoints save the histories
                   log_every=cfg.train.log_every,
                   train_step=GANStep(real_label=g.real_label, fake_label=g.fake_label, autoclips=autoclips))


def bar_text(logs: dict) -> str:
    return (f"D {logs['d_loss']:.3f}  G {logs['g_loss']:.3f}  D(x) {logs['d_real']:.2f}  "
            f"D(G(z)) {logs['d_fake']:.2f}")


@torch.no_grad()
def draw(model: GAN, noise: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    images = model.generator(noise).cpu()
    model.train(was_training)
    return images


def figures(rows: list[dict], snapshots: dict[int, torch.Tensor], final: torch.Tensor, cfg: Config,
             plots) -> list[str]:
    n = cfg.generative.grid
    written = []
    for epoch, images in sorted(snapshots.items()):
        plot_image_grid(images.numpy(), plots / f"samples_epoch_{epoch}.png", ncol=n,
                        title=f"GAN, fixed noise, epoch {epoch}")
        written.append(f"samples_epoch_{epoch}.png")
    plot_image_grid(final.numpy(), plots / "samples.png", ncol=n,
                    title=f"GAN samples, fixed noise, {len(rows)} epochs")
    history = {k: np.array([r[k] for r in rows], dtype=float) for k in COLUMNS}
    plot_gan_curves(history, plots / "gan_curves.png")
    return written + ["samples.png", "gan_curves.png"]


class GanTask(GenerativeTask):
    name = "gan"

    def loop(self, cfg: Config, model, data: ImageData, member: Member) -> Loop:
        g = cfg.generative
        fixed = torch.randn(g.grid ** 2, g.latent_dim,
                            generator=torch.Generator().manual_seed(member.seed + 1)).to(member.device)
        snapshots = Snapshots(fixed, epochs=snapshot_epochs(cfg.train.epochs, g.snapshots))
        X = data.X["train"]
        return Loop(train=(X, X), val=None, columns=COLUMNS, callbacks=[snapshots], stats=bar_text,
                    trainer=lambda callbacks: gan_trainer(model, cfg, train_rows=len(X), callbacks=callbacks,
                                                          base_lr=member.base_lr),
                    extras={"snapshots": snapshots, "fit": member.fit, "progress": member.progress})

    def evaluate(self, cfg: Config, model, data: ImageData, fitted: Fitted, member: Member) -> Evaluated:
        g, last = cfg.generative, fitted.rows[-1]
        metrics = {"task": "generative", "model": "gan", "arch": g.arch,
                   "final": {k: last[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")},
                   "labels": {"real": g.real_label, "fake": g.fake_label}, "pixel_range": list(data.pixel_range)}
        spec = generative_architecture(cfg, data.image_shape)
        return Evaluated(metrics=metrics, info=run_info(spec, data), model=model)

    def write(self, run: Run, fitted: Fitted, data: ImageData, staging, cfg: Config) -> None:
        model, metrics, extras = run.model, run.metrics, fitted.extras
        snapshots = extras["snapshots"]
        with atomic_dir(staging) as tmp:
            scores = score_samples(cfg, data, model, tmp, progress=extras["progress"], fit=extras["fit"])
            if scores is not None:
                metrics["scores"] = scores
            metrics["plots"] = figures(fitted.rows, snapshots.images, draw(model, snapshots.noise), cfg,
                                       tmp / "plots")
            model.cpu()
            write_files(tmp, run, cfg, fitted.rows, COLUMNS)
