"""Training and evaluation of GANs (`nnrecipe.models.gan`).

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
lr, seconds. A fixed noise batch is drawn through G (eval mode) at ``generative.snapshots``
evenly spaced epochs (plots/samples_epoch_N.png, `Snapshots`) and at the end (plots/samples.png).

Checkpoints: the Trainer's (`nnrecipe.training.checkpoint`), after every epoch and every
``train.checkpoint_every_steps`` steps, hold G and D, both optimizers, the step and the position
in the epoch, the history rows, the snapshots so far and every RNG state (batch order; z is drawn
from torch's global RNG on the data's device, whose state is saved too), so ``nnrecipe fit
--resume`` continues an interrupted GAN, also mid-epoch, to the result of the uninterrupted run.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from nnrecipe.config import Config, config_to_dict, schedule_name
from nnrecipe.genfit import run_info, score_samples, setup_generative, write_files
from nnrecipe.models.gan import GAN, discriminator_loss, generator_loss
from nnrecipe.rundir import RunInProgress, atomic_dir, open_checkpointer, run_dir_name
from nnrecipe.run import Run
from nnrecipe.training.callbacks import Callback, History, ProgressBar
from nnrecipe.training.clipping import clip_gradients
from nnrecipe.training.loop import Trainer
from nnrecipe.training.optim import Optimizers, build_optimizer
from nnrecipe.training.schedules import build_schedule
from nnrecipe.training.setup import base_lr

COLUMNS = ("epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "seconds")


def snapshot_epochs(epochs: int, count: int) -> list[int]:
    """`count` evenly spaced epochs in 1..epochs (the last included)."""
    if count <= 0:
        return []
    return sorted({int(round(e)) for e in np.linspace(1, epochs, min(count, epochs))})


class GANStep:
    """One step of Algorithm 1 (k = 1) as a `Trainer.train_step`: a D update, then a G update, each
    with its optimizer (``trainer.optimizer["d"]``, ``["g"]``) and the trainer's clipping; returns
    [d_loss, g_loss, D(x) mean, D(G(z)) mean] on the device (no host sync)."""

    columns = ("d_loss", "g_loss", "d_real", "d_fake")

    def __init__(self, *, real_label: float, fake_label: float):
        self.real_label, self.fake_label = real_label, fake_label

    def __call__(self, trainer: Trainer, real: torch.Tensor, _targets) -> torch.Tensor:
        model: GAN = trainer.model
        G, D = model.generator, model.discriminator
        opt_g, opt_d = trainer.optimizer["g"], trainer.optimizer["d"]
        fake = G(torch.randn(len(real), model.latent_dim, device=real.device))
        real_logits, fake_logits = D(real), D(fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits, real_label=self.real_label, fake_label=self.fake_label)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        clip_gradients(list(D.parameters()), mode=trainer.clip_mode, threshold=trainer.clip_threshold)
        opt_d.step()
        g_loss = generator_loss(D(fake))  # D's fresh grads from here are cleared before its next step
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        clip_gradients(list(G.parameters()), mode=trainer.clip_mode, threshold=trainer.clip_threshold)
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
            self.images[logs["epoch"]] = _draw(trainer.model, self.noise)

    def state_dict(self) -> dict:
        return {f"epoch_{e}": images for e, images in self.images.items()}

    def load_state_dict(self, state: dict) -> None:
        self.images = {int(k.split("_")[1]): v.cpu() for k, v in state.items()}


def gan_trainer(model: GAN, cfg: Config, *, train_rows: int, callbacks: list[Callback]) -> Trainer:
    """A `Trainer` running `GANStep` with G's and D's optimizers and the LR schedule of `cfg`."""
    steps = max(1, -(-train_rows // cfg.train.batch_size))
    schedule = build_schedule(cfg.schedule.model_copy(update={"name": schedule_name(cfg)}), base_lr=base_lr(cfg),
                              total_steps=steps * cfg.train.epochs)
    optimizers = Optimizers(g=build_optimizer(model.generator, cfg.optimizer),
                            d=build_optimizer(model.discriminator, cfg.optimizer))
    g = cfg.generative
    return Trainer(model=model, loss_fn=None, optimizer=optimizers, schedule=schedule, classification=False,
                   clip_mode=cfg.clip.name, clip_threshold=cfg.clip.threshold, callbacks=callbacks,
                   log_every=cfg.train.log_every,
                   train_step=GANStep(real_label=g.real_label, fake_label=g.fake_label))


def _bar_text(logs: dict) -> str:
    return (f"D {logs['d_loss']:.3f}  G {logs['g_loss']:.3f}  D(x) {logs['d_real']:.2f}  "
            f"D(G(z)) {logs['d_fake']:.2f}")


@torch.no_grad()
def _draw(model: GAN, noise: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    images = model.generator(noise).cpu()
    model.train(was_training)
    return images


def _figures(rows: list[dict], snapshots: dict[int, torch.Tensor], final: torch.Tensor, cfg: Config,
             plots) -> list[str]:
    from nnrecipe.report.genplots import plot_gan_curves, plot_image_grid

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


def fit_gan(cfg: Config, *, out, progress: bool, resume: bool = False) -> Run:
    """Train a GAN into a run directory through the Trainer, checkpointing (`resume` continues one)."""
    started = time.perf_counter()
    seed = cfg.train.seed
    device, data, spec, model = setup_generative(cfg)
    g = cfg.generative
    fixed = torch.randn(g.grid ** 2, g.latent_dim, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    history = History()
    history.columns = COLUMNS
    snapshots = Snapshots(fixed, epochs=snapshot_epochs(cfg.train.epochs, g.snapshots))
    callbacks = [history, snapshots]
    if progress:
        callbacks.append(ProgressBar(cfg.train.epochs, description=f"fit {data.name} gan", stats=_bar_text))
    X = data.X["train"]
    trainer = gan_trainer(model, cfg, train_rows=len(X), callbacks=callbacks)
    final = run_dir_name(out, cfg, data.name)
    with RunInProgress(final, cfg, resume=resume) as live:  # created (or taken over) when training starts
        checkpointer = open_checkpointer(cfg, live)
        trainer.callbacks.append(checkpointer)
        trainer.fit(X, X, None, None, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size,
                    generator=torch.Generator().manual_seed(seed))
        train_seconds = time.perf_counter() - started + checkpointer.elapsed_before
        return _finish(cfg, data, model, spec, history.rows, snapshots.images, fixed, train_seconds, live, progress)


def _finish(cfg: Config, data, model: GAN, spec: dict, rows: list[dict], snapshots: dict, fixed: torch.Tensor,
            train_seconds: float, live: RunInProgress, progress: bool) -> Run:
    """Metrics, judge scores and figures, committed into the run directory (`live`)."""
    g, seed = cfg.generative, cfg.train.seed
    model.eval()
    last = rows[-1]
    metrics = {"task": "generative", "model": "gan", "arch": g.arch, "epochs_run": len(rows),
               "final": {k: last[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")},
               "train_seconds": train_seconds, "lr": base_lr(cfg), "seed": seed, "status": "ok",
               "labels": {"real": g.real_label, "fake": g.fake_label}, "pixel_range": list(data.pixel_range)}
    run = Run(dir=None, model=model, info=run_info(spec, data), metrics=metrics, config=config_to_dict(cfg))

    def write(directory):
        with atomic_dir(directory) as tmp:
            scores = score_samples(cfg, data, model, tmp, progress=progress)
            if scores is not None:
                metrics["scores"] = scores
            metrics["plots"] = _figures(rows, snapshots, _draw(model, fixed), cfg, tmp / "plots")
            model.cpu()
            write_files(tmp, run, cfg, rows, COLUMNS)
    run.dir = live.commit(write)
    return run
