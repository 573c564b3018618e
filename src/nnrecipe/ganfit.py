"""Training and evaluation of GANs (`nnrecipe.models.gan`).

Each step (Goodfellow et al. 2014, Algorithm 1 with k = 1 and the non-saturating G loss):

    x ~ batch, z ~ N(0, I), x̃ = G(z)
    D step: minimize BCE(D(x), real_label) + BCE(D(x̃.detach()), fake_label)
    G step: minimize −log D(x̃)

G and D have their own optimizer built from ``optimizer.*`` (default for gan: Adam, lr 2e-4,
β = (0.5, 0.999), no weight decay, constant LR: DCGAN's settings). There is no validation loss for
a GAN, so every epoch runs and the last weights are kept. history.csv holds per epoch: d_loss,
g_loss, d_real = mean D(x) and d_fake = mean D(G(z)) (on the D step's batch, before its update),
lr, seconds. A fixed noise batch is drawn through G (eval mode) at ``generative.snapshots``
evenly spaced epochs (plots/samples_epoch_N.png) and at the end (plots/samples.png).

Checkpoints: after every epoch, checkpoints/ckpt-EPOCH holds G and D, both optimizers, the step,
the history rows, the snapshots so far and every RNG state (batch order, noise draws), so
``nnrecipe fit --resume`` continues an interrupted GAN to the result of the uninterrupted run
(epoch granularity: ``train.checkpoint_every_steps`` does not apply here).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from nnrecipe.config import Config, schedule_name
from nnrecipe.errors import TrainingDiverged
from nnrecipe.models.gan import GAN, discriminator_loss, generator_loss
from nnrecipe.training.checkpoint import capture_rng, restore_rng
from nnrecipe.training.clipping import clip_gradients
from nnrecipe.training.loop import iterate_batches
from nnrecipe.training.optim import build_optimizer
from nnrecipe.training.schedules import build_schedule
from nnrecipe.report.genplots import plot_gan_curves, plot_image_grid

COLUMNS = ("epoch", "d_loss", "g_loss", "d_real", "d_fake", "lr", "seconds")


def snapshot_epochs(epochs: int, count: int) -> list[int]:
    """`count` evenly spaced epochs in 1..epochs (the last included)."""
    if count <= 0:
        return []
    return sorted({int(round(e)) for e in np.linspace(1, epochs, min(count, epochs))})


def train_gan(model: GAN, X: torch.Tensor, cfg: Config, *, epochs: int, progress_bar=None,
              fixed_noise: torch.Tensor | None = None, keep: list[int] = (),
              checkpoint: Callable[[dict], None] | None = None,
              resume: dict | None = None, base_lr: float) -> tuple[list[dict], dict[int, torch.Tensor]]:
    """Alternate D and G steps for `epochs`; returns (history rows, {epoch: G(fixed_noise)}).
    `checkpoint(state)` is called after every epoch; `resume` is such a state to continue from."""
    g = cfg.generative
    G, D = model.generator, model.discriminator
    opt_g, opt_d = build_optimizer(G, cfg.optimizer), build_optimizer(D, cfg.optimizer)
    steps = max(1, -(-len(X) // cfg.train.batch_size))
    schedule = build_schedule(cfg.schedule.model_copy(update={"name": schedule_name(cfg)}), base_lr=base_lr,
                              total_steps=steps * epochs)
    batches = torch.Generator().manual_seed(cfg.train.seed)
    rows, snapshots, step, first = [], {}, 0, 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt_g.load_state_dict(resume["opt_g"])
        opt_d.load_state_dict(resume["opt_d"])
        rows, step, first = [dict(r) for r in resume["rows"]], int(resume["step"]), int(resume["epoch"]) + 1
        snapshots = {int(k.split("_")[1]): v.cpu() for k, v in resume["snapshots"].items()}
        restore_rng(resume["rng"], batches)
    for epoch in range(first, epochs + 1):
        start = time.perf_counter()
        model.train()
        sums, count = torch.zeros(4, device=X.device), 0
        for idx in iterate_batches(len(X), cfg.train.batch_size, batches, X.device, drop_singleton=True):
            lr = schedule.lr_at(step)
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
            real = X[idx]
            fake = G(torch.randn(len(idx), model.latent_dim, device=X.device))
            real_logits, fake_logits = D(real), D(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits, real_label=g.real_label, fake_label=g.fake_label)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            clip_gradients(list(D.parameters()), mode=cfg.clip.name, threshold=cfg.clip.threshold)
            opt_d.step()
            g_loss = generator_loss(D(fake))  # D's fresh grads from here are cleared before its next step
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            clip_gradients(list(G.parameters()), mode=cfg.clip.name, threshold=cfg.clip.threshold)
            opt_g.step()
            step += 1
            sums += torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits.detach()).mean(),
                                 torch.sigmoid(fake_logits.detach()).mean()])
            count += 1
        d_mean, g_mean, d_real, d_fake = (sums / max(count, 1)).tolist()  # one host sync per epoch
        if not (math.isfinite(d_mean) and math.isfinite(g_mean)):
            raise TrainingDiverged(step, epoch, d_mean if not math.isfinite(d_mean) else g_mean)
        rows.append({"epoch": epoch, "d_loss": d_mean, "g_loss": g_mean, "d_real": d_real, "d_fake": d_fake,
                     "lr": lr, "seconds": time.perf_counter() - start})
        if fixed_noise is not None and epoch in keep:
            snapshots[epoch] = draw(model, fixed_noise)
        if checkpoint is not None:
            checkpoint({"model": model.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                        "epoch": epoch, "step": step, "rows": rows, "rng": capture_rng(batches),
                        "snapshots": {f"epoch_{e}": t for e, t in snapshots.items()}})
        if progress_bar is not None:
            progress_bar.progress.update(progress_bar.task, completed=epoch,
                                         stats=f"D {d_mean:.3f}  G {g_mean:.3f}  D(x) {d_real:.2f}  D(G(z)) {d_fake:.2f}")
    return rows, snapshots


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
