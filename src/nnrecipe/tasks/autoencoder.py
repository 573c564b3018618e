"""The autoencoder / VAE task (`nnrecipe.models.autoencoder`): losses, metrics, figures and the run.

Both train through the project's `Trainer` (schedule, clipping, NaN guard, early stopping on the
validation loss with best-weight restore, progress bar) with the inputs as targets:

    autoencoder: loss = mean_batch Σ_pixels BCE(x, x̂)      (``generative.recon_loss: bce``)
                     or mean_batch Σ_pixels (x − x̂)²         (``mse``)
    vae:         loss = mean_batch [Σ_pixels BCE(x, x̂) + β · KL(q(z|x) ‖ N(0, I))]

The forward function packs [logits, μ, log σ²] into one tensor per row so the Trainer's batching
and `predict_logits` need no special case. Test metrics: a VAE reports ELBO = −(reconstruction +
KL) per example in nats (one z sample per image, a fixed seed; also at initialization, for
comparison), its two terms, the MSE of the mean reconstruction sigmoid(dec(μ)), and the active
units (latent dimensions with Var_x[μ_j] > 0.01, Burda et al. 2016); an autoencoder reports BCE
(nats per image) and MSE (per pixel). Pixels are in [0, 1], where BCE is the Bernoulli likelihood
of soft targets, the convention of the VAE paper's MNIST experiments.

What is particular: the inputs are the targets, the forward packs [logits, μ, log σ²] per row so
the Trainer needs no special case, the validation reconstruction and KL are extra history
columns, a VAE's ELBO is measured at init and after training, and the run holds reconstructions,
interpolations, samples and the latent map instead of the tabular report.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from nnrecipe.config import Config
from nnrecipe.errors import TrainingDiverged
from nnrecipe.generative import (ImageData, generative_architecture, run_info, score_samples, write_files)
from nnrecipe.metrics.generative import bernoulli_nll, elbo, gaussian_kl
from nnrecipe.models.autoencoder import AutoEncoder, reparameterize
from nnrecipe.rundir import atomic_dir
from nnrecipe.run import Run
from nnrecipe.tasks.generative import GenerativeTask
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member
from nnrecipe.training.callbacks import Callback, History
from nnrecipe.report.genplots import plot_image_grid, plot_interpolation, plot_latent, plot_reconstructions



ACTIVE_UNIT_VARIANCE = 0.01
EXTRA_COLUMNS = ("val_reconstruction", "val_kl")


def pack_forward(model: AutoEncoder, x: torch.Tensor) -> torch.Tensor:
    """[logits (flattened), μ, log σ²] per row (an autoencoder: the logits alone)."""
    logits, mu, logvar = model(x)
    return torch.cat([logits.flatten(1), mu, logvar], dim=1) if model.variational else logits.flatten(1)


def _terms(out: torch.Tensor, x: torch.Tensor, variational: bool, recon_loss: str):
    """Per-example (reconstruction, KL or None) from a packed output."""
    d = x[0].numel()
    logits = out[:, :d].reshape(x.shape)
    if recon_loss == "mse" and not variational:
        return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1), None
    recon = bernoulli_nll(logits, x)
    if not variational:
        return recon, None
    mu, logvar = out[:, d:].chunk(2, dim=1)
    return recon, gaussian_kl(mu, logvar)


def make_loss(*, variational: bool, beta: float, recon_loss: str):
    def loss(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        recon, kl = _terms(out, x, variational, recon_loss)
        return (recon + beta * kl).mean() if kl is not None else recon.mean()
    return loss


class ValidationTerms(Callback):
    """Adds the validation reconstruction and KL (per example) to each epoch's row."""

    def __init__(self, X_val: torch.Tensor, variational: bool, recon_loss: str):
        self.X_val, self.variational, self.recon_loss = X_val, variational, recon_loss

    @torch.no_grad()
    def on_validation_end(self, trainer, logs):
        trainer.model.eval()
        recon, kl = _terms(pack_forward(trainer.model, self.X_val), self.X_val, self.variational, self.recon_loss)
        logs["val_reconstruction"] = recon.mean().item()
        logs["val_kl"] = kl.mean().item() if kl is not None else None


@torch.no_grad()
def evaluate_autoencoder(model: AutoEncoder, X: torch.Tensor, *, seed: int, batch_size: int = 1024) -> dict:
    """Test metrics (see the module docstring), batch by batch."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    recon, kl, mse, mus = [], [], [], []
    for i in range(0, len(X), batch_size):
        x = X[i:i + batch_size]
        mu, logvar = model.encode(x)
        mse.append((torch.sigmoid(model.decode(mu)) - x).pow(2).flatten(1).mean(1))
        mus.append(mu)
        if model.variational:
            z = reparameterize(mu, logvar, generator=g)
            recon.append(bernoulli_nll(model.decode(z), x))
            kl.append(gaussian_kl(mu, logvar))
        else:
            recon.append(bernoulli_nll(model.decode(mu), x))
    recon_t, mse_t = torch.cat(recon), torch.cat(mse)
    if not model.variational:
        return {"reconstruction_bce": recon_t.mean().item(), "reconstruction_mse": mse_t.mean().item(),
                "n": len(X)}
    kl_t = torch.cat(kl)
    variances = torch.cat(mus).var(dim=0)
    return {"elbo": elbo(recon_t, kl_t).mean().item(), "reconstruction": recon_t.mean().item(),
            "kl": kl_t.mean().item(), "reconstruction_mse": mse_t.mean().item(),
            "active_units": int((variances > ACTIVE_UNIT_VARIANCE).sum()), "latent_dim": model.latent_dim,
            "n": len(X)}


def figures(model: AutoEncoder, data: ImageData, cfg: Config, plots) -> list[str]:
    g, seed = cfg.generative, cfg.train.seed
    X = data.X["test"]
    written = []
    with torch.no_grad():
        n = min(10, len(X))
        mu, _ = model.encode(X[:n])
        plot_reconstructions(X[:n].cpu().numpy(), torch.sigmoid(model.decode(mu)).cpu().numpy(),
                             plots / "reconstructions.png")
        written.append("reconstructions.png")
        pairs = interpolation_pairs(data, count=4)
        if pairs:
            a, b = model.encode(X[[p[0] for p in pairs]])[0], model.encode(X[[p[1] for p in pairs]])[0]
            t = torch.linspace(0, 1, 8, device=a.device)[1:-1, None, None]
            inner = torch.sigmoid(model.decode(((1 - t) * a + t * b).flatten(0, 1)))  # [6·P, C, H, W]
            inner = inner.reshape(6, len(pairs), *data.image_shape).transpose(0, 1)
            rows = torch.cat([X[[p[0] for p in pairs]][:, None], inner, X[[p[1] for p in pairs]][:, None]], 1)
            plot_interpolation(rows.cpu().numpy(), plots / "interpolation.png")
            written.append("interpolation.png")
        if model.variational:
            images = model.sample(g.grid ** 2, generator=torch.Generator().manual_seed(seed))
            plot_image_grid(images.cpu().numpy(), plots / "samples.png", ncol=g.grid,
                            title=f"VAE samples, z ~ N(0, I), seed {seed}")
            written.append("samples.png")
        codes = torch.cat([model.encode(X[i:i + 1024])[0] for i in range(0, len(X), 1024)]).cpu().numpy()
    labels = data.y["test"] if data.y is not None else None
    points, method = embed_2d(codes, method=g.embedding, seed=seed)
    what = "μ" if model.variational else "z"
    plot_latent(points, labels, data.class_names, plots / "latent.png",
                title=f"Test codes {what} ({codes.shape[1]}-D) by {method}")
    written.append("latent.png")
    return written


def interpolation_pairs(data: ImageData, *, count: int) -> list[tuple[int, int]]:
    """Pairs of test indices, of different classes when labels exist (class c with class c + 1)."""
    n = len(data.X["test"])
    if n < 2:
        return []
    if data.y is None:
        return [(2 * i, 2 * i + 1) for i in range(min(count, n // 2))]
    y = data.y["test"]
    classes = np.unique(y)
    first = {int(c): int(np.flatnonzero(y == c)[0]) for c in classes}
    if len(classes) < 2:
        return [(0, 1)]
    return [(first[int(classes[i % len(classes)])], first[int(classes[(i + 1) % len(classes)])])
            for i in range(min(count, len(classes)))]


def embed_2d(codes: np.ndarray, *, method: str, seed: int) -> tuple[np.ndarray, str]:
    """2-D picture of latent codes: sklearn PCA (default) or t-SNE; a 1-D code is padded with 0."""
    if codes.shape[1] == 1:
        return np.hstack([codes, np.zeros_like(codes)]), "its one coordinate"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, len(codes) - 1) / 3))
        return TSNE(2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(codes), "t-SNE"
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(codes)
    share = pca.explained_variance_ratio_.sum()
    return pca.transform(codes), f"PCA ({share:.0%} of the variance)"


class AutoencoderTask(GenerativeTask):
    name = "autoencoder"
    commands = frozenset({"sample", "embed"})  # the code z (a VAE's μ) is a representation to map
    instead = "draw images with `nnrecipe sample RUN_DIR --out grid.png` or map the codes with `nnrecipe embed RUN_DIR`"

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
