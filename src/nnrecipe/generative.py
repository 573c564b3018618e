"""What the generative tasks (`nnrecipe.tasks.autoencoder`, `nnrecipe.tasks.gan`) share: images in
[0, 1], the architecture spec, the judge classifier and its scores, the run's files, loading a
run back and drawing samples from it.

Data: any image source (digits, an image folder, a 4-D .npz); pixels are mapped to [0, 1] with
the training split's range, x' = (x − lo)/(hi − lo) (digits: lo = 0, hi = 16), and split like
`fit` does (same seed and fractions, stratified when there are labels). Labels are optional: they
colour plots/latent.png and let a judge classifier be trained.

Judge scores (VAE and GAN, `nnrecipe.metrics.generative`): a small nnrecipe CNN trained on the
same split (``RUN/judge``, or a classifier run given as ``generative.judge``) gives p(y|x) and its
penultimate-layer features for N = ``generative.eval_samples`` images of three kinds: generated,
real training images (the ceiling: a perfect generator samples the training distribution) and
uniform noise (the floor). Each gets class entropy, mean entropy/confidence, the inception score
and the Fréchet distance to the real TEST images' features.

model.json has ``"task": "generative"``; `load_generative` reads such a run back (`nnrecipe.load`
reaches it through the tasks' registry).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from nnrecipe.config import Config, config_to_dict, save_config
from nnrecipe.data import encode_labels, infer_task, load_table, split_indices
from nnrecipe.errors import UserError
from nnrecipe.metrics.generative import class_scores, frechet_distance_features
from nnrecipe.models.autoencoder import BUILDERS as AE_BUILDERS
from nnrecipe.models.autoencoder import conv_base_size
from nnrecipe.models.gan import BUILDERS as GAN_BUILDERS
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.run import MODEL_FORMAT, Run, load_predictor, read_metrics_and_config, read_run_info, save_model
from nnrecipe.report.genplots import plot_image_grid
from nnrecipe.report.plots import plot_run

GENERATIVE_MODELS = ("autoencoder", "vae", "gan")
BUILDERS = {**AE_BUILDERS, **GAN_BUILDERS}
# the judge trained when generative.judge is unset: a small CNN without augmentation (0.97 test
# accuracy on digits in 15 epochs; with the default augmentation it reached 0.92)
JUDGE = {"model": {"name": "cnn", "channels": [16, 32]}, "augment": {"enabled": False}}


@dataclass
class ImageData:
    X: dict[str, torch.Tensor]  # "train" / "val" / "test": [N, C, H, W] float32 in [0, 1]
    y: dict[str, np.ndarray] | None  # int64 class codes, or None without labels
    class_names: list[str] | None
    image_shape: tuple[int, int, int]
    pixel_range: tuple[float, float]  # raw (lo, hi) mapped to (0, 1)
    name: str

    def raw(self, images: torch.Tensor) -> np.ndarray:
        """[0, 1] images back to flat raw rows, the input a judge classifier's transform expects."""
        lo, hi = self.pixel_range
        return lo + images.detach().cpu().double().flatten(1).numpy() * (hi - lo)


def load_images(cfg: Config, device: torch.device) -> ImageData:
    d = cfg.data
    if d.test_data:
        raise UserError("data.test_data is not used by generative models", "data.test_data",
                        "drop it; the test split comes from data.test_fraction")
    kwargs = dict(target=d.target, image_size=d.image_size, skip_bad_images=d.skip_bad_images, channels=d.channels)
    try:
        table = load_table(d.source, **kwargs)
    except UserError:  # labels are optional here; a real problem resurfaces in the second call
        table = load_table(d.source, require_target=False, **kwargs)
    if table.image_shape is None:
        raise UserError(f"'{d.source}' holds vectors, generative models need images", "data.source",
                        "use digits, a folder of images or an .npz with X of shape N×C×H×W")
    labelled = table.y is not None and infer_task(table.y) == "classification"  # numeric targets: no classes
    y_all, class_names = encode_labels(table.y) if labelled else (None, None)
    splits = split_indices(len(table.X), y=y_all, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                           seed=cfg.train.seed, stratify=y_all is not None)
    train = table.X[splits[0]]
    lo, hi = float(train.min()), float(train.max())
    if hi <= lo:
        raise UserError("every training pixel has the same value", d.source, "check the images")
    shape = tuple(table.image_shape)
    X = {name: torch.as_tensor(np.clip((table.X[idx] - lo) / (hi - lo), 0, 1), dtype=torch.float32)
             .reshape(-1, *shape).to(device) for name, idx in zip(("train", "val", "test"), splits)}
    y = None if y_all is None else {name: y_all[idx] for name, idx in zip(("train", "val", "test"), splits)}
    return ImageData(X, y, class_names, shape, (lo, hi), table.name)


def generative_architecture(cfg: Config, image_shape: tuple[int, int, int]) -> dict:
    g = cfg.generative
    if g.arch == "conv":
        try:
            conv_base_size(image_shape, len(g.channels))
        except ValueError as exc:
            raise UserError(str(exc), "generative.channels",
                            "use fewer stages (e.g. generative.channels=[64]) or resize with data.image_size") from None
    return {"name": cfg.model.name, "arch": g.arch, "image_shape": list(image_shape), "latent_dim": g.latent_dim,
            "hidden": list(g.hidden), "channels": list(g.channels)}


def build_generative(spec: dict) -> nn.Module:
    return BUILDERS[spec["name"]](spec)


def check_generative(cfg: Config) -> None:
    """What every generative fit refuses before it starts (the task's `check`)."""
    if cfg.data.lazy:
        raise UserError(f"data.lazy streams image folders for classifiers; model '{cfg.model.name}' reads its "
                        "data in memory", "data.lazy", "drop --set data.lazy=true")
    judge = cfg.generative.judge
    if judge not in (None, "none") and cfg.model.name != "autoencoder" and not (Path(judge) / "model.json").is_file():
        raise UserError(f"judge run not found: {judge}", "generative.judge",
                        "pass a classifier run directory, leave it unset to train one, or set it to none")


# ---- judge classifier -------------------------------------------------------------------------

def judge_run(cfg: Config, data: ImageData, directory: Path, *, progress: bool, fit: Callable) -> Run | None:
    """The classifier that scores samples: ``generative.judge`` (a run directory), or a small CNN
    trained now into `directory` on the same split by `fit` (the driver's, handed down by it);
    None when there are no labels or judge=none."""
    source = cfg.generative.judge
    if source == "none" or data.class_names is None:
        return None
    if source:
        info = read_run_info(source)
        judge = load_predictor(source, info) if info.get("task") == "classification" else None
        if judge is None or judge.model is None:
            raise UserError("the judge must be a single classification run", "generative.judge",
                            "pass a run of `nnrecipe fit --data <the same images> --model cnn`")
        if judge.image_shape is not None and tuple(judge.image_shape) != data.image_shape:
            raise UserError(f"the judge takes {judge.image_shape} images, the data are {data.image_shape}",
                            "generative.judge", "train the judge on the same images")
        return judge
    tree = {**JUDGE, "data": config_to_dict(cfg)["data"],
            "train": {"epochs": cfg.generative.judge_epochs, "seed": cfg.train.seed, "device": cfg.train.device}}
    return fit(config=tree, out=directory, progress=progress)


def judge_outputs(judge: Run, data: ImageData, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(p(y|x) [N, C] with the judge's temperature, penultimate features [N, F]): the features are
    the input of the judge's last nn.Linear (its head), caught by a forward pre-hook."""
    head = [m for m in judge.model.modules() if isinstance(m, nn.Linear)][-1]
    features: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda module, inputs: features.append(inputs[0].detach().cpu()))
    try:
        logits = judge.logits_standardized(judge.standardize(data.raw(images)))
    finally:
        hook.remove()
    probs = apply_temperature(logits.double(), judge.temperature).numpy()
    return probs, torch.cat(features).double().numpy()


def judge_scores(judge: Run, data: ImageData, generated: torch.Tensor, *, seed: int) -> dict:
    """Scores of generated images next to the real-training-image ceiling and the noise floor."""
    n = min(len(generated), len(data.X["train"]))
    g = torch.Generator().manual_seed(seed)
    real = data.X["train"][torch.randperm(len(data.X["train"]), generator=g)[:n].to(data.X["train"].device)]
    noise = torch.rand(n, *data.image_shape, generator=g)
    _, reference = judge_outputs(judge, data, data.X["test"])
    result = {}
    for name, images in (("generated", generated[:n]), ("real", real), ("noise", noise)):
        probs, feats = judge_outputs(judge, data, images)
        result[name] = {**class_scores(probs), "frechet_distance": frechet_distance_features(feats, reference),
                        "n": int(len(images))}
    accuracy = (judge.metrics.get("test") or {}).get("accuracy")
    result["judge"] = {"dir": str(judge.dir), "model": judge.info["architecture"]["name"],
                       "test_accuracy": accuracy, "features": int(reference.shape[1]),
                       "reference": f"{len(data.X['test'])} test images"}
    return result


def score_samples(cfg: Config, data: ImageData, model: nn.Module, tmp: Path, *, progress: bool,
                  fit: Callable) -> dict | None:
    """Judge scores of ``generative.eval_samples`` images drawn from `model` (None without a judge);
    a judge trained now by `fit` goes to tmp/judge, inside the run directory being written."""
    judge = judge_run(cfg, data, tmp / "judge", progress=progress, fit=fit)
    if judge is None:
        return None
    samples = model.sample(cfg.generative.eval_samples, generator=torch.Generator().manual_seed(cfg.train.seed + 2))
    scores = judge_scores(judge, data, samples, seed=cfg.train.seed)
    scores["judge"]["dir"] = cfg.generative.judge or "judge"
    return scores


# ---- run directory ----------------------------------------------------------------------------

def write_history_csv(rows: list[dict], columns: tuple[str, ...], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})


def run_info(spec: dict, data: ImageData) -> dict:
    return {"task": "generative", "architecture": spec, "image_shape": list(data.image_shape),
            "pixel_range": list(data.pixel_range), "class_names": data.class_names, "data": data.name}


def write_files(tmp: Path, run: Run, cfg: Config, rows: list[dict], columns: tuple[str, ...]) -> None:
    """config.yaml, history.csv, metrics.json, model.safetensors + model.json, learning curves."""
    save_config(cfg, tmp / "config.yaml")
    write_history_csv(rows, columns, tmp / "history.csv")
    (tmp / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
    save_model(run, tmp)
    plot_run(tmp)


def load_generative(run_dir: str | Path, info: dict | None = None) -> Run:
    """A generative run back: model (eval mode), model.json, metrics, config."""
    run_dir = Path(run_dir)
    fix = "pass a run directory written by `nnrecipe fit --model autoencoder|vae|gan`"
    info = info if info is not None else read_run_info(run_dir)
    if info.get("task") != "generative":
        raise UserError("not a generative run", str(run_dir), fix)
    if info.get("format") != MODEL_FORMAT:
        raise UserError("unknown model.json format", str(run_dir / "model.json"), fix)
    try:
        model = build_generative(info["architecture"])
        model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise UserError(f"corrupt or mismatched weights ({type(exc).__name__})", str(run_dir), fix) from None
    metrics, config = read_metrics_and_config(run_dir)
    return Run(dir=run_dir, model=model.eval(), info=info, metrics=metrics, config=config)


def sample_grid(run_dir: str | Path, out_png: str | Path, *, count: int = 64, seed: int = 0) -> Path:
    """Draw `count` images from a VAE's prior or a GAN's generator into one PNG grid."""
    if count < 1:
        raise UserError(f"--count must be >= 1, got {count}", "--count", "ask for at least one image")
    run = load_generative(run_dir)
    if run.info["architecture"]["name"] == "autoencoder":
        raise UserError("a plain autoencoder has no prior to sample from", str(run_dir),
                        "train a VAE (--model vae) or a GAN (--model gan)")
    images = run.model.sample(count, generator=torch.Generator().manual_seed(seed))
    ncol = int(np.ceil(np.sqrt(count)))
    return plot_image_grid(images.numpy(), Path(out_png), ncol=ncol,
                           title=f"{count} samples, {run.info['architecture']['name']}, seed {seed}")
