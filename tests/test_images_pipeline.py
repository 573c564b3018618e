"""End to end on images: digits as 1×8×8 for a conv net, PNG folders and .npz arrays through
fit → predict, bad image input at the CLI, whitening round trips, `nnrecipe summary`, and
augmentation confined to training batches.

The synthetic images are three patterns a conv net separates easily — bright left half, bright
right half, bright centre square — on a noisy dark background, so "mostly right" is a bound that
a broken pipeline (wrong channel order, labels shuffled, stats not applied) fails.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import nnrecipe
from nnrecipe.cli import main
from nnrecipe.config import build_config, resolve_config
from nnrecipe.data import encode_labels, load_table, split_indices
from nnrecipe.data.augment import make_augmenter
from nnrecipe.models import build_model
from nnrecipe.prepare import prepare_for, to_tensors
from nnrecipe.training.setup import architecture, make_model, make_trainer
from testutil import set_args

# A small conv net that reaches > 0.9 test accuracy on digits in ~6 epochs on one core.
CNN = ["model.name=cnn", "model.channels=[16,32]", "model.convs_per_stage=1", "train.batch_size=32",
       "optimizer.lr=0.01"]
# Error paths and behaviour checks where accuracy does not matter.
TINY = ["model.channels=[4]", "model.convs_per_stage=1", "train.epochs=1", "train.batch_size=16"]
PATTERNS = ("center", "left", "right")


def _pattern(name: str, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """[size, size] floats in [0, 1]: noise in [0, 0.25] plus 0.6 on the pattern's region."""
    img = rng.uniform(0.0, 0.25, (size, size))
    half, quarter = size // 2, size // 4
    region = {"left": np.s_[:, :half], "right": np.s_[:, half:],
              "center": np.s_[quarter:size - quarter, quarter:size - quarter]}[name]
    img[region] += 0.6
    return img


def _to_uint8(img: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    if mode == "L":
        return np.rint(img * 255).astype(np.uint8)
    tint = rng.uniform(0.6, 1.0, 3)  # a random colour per image: the pattern, not the hue, is the class
    return np.rint(img[:, :, None] * tint * 255).astype(np.uint8)


def _write_folder(root, n: int, *, seed: int, mode: str, labelled: bool = True, size: int = 16) -> dict:
    """Write n PNGs per pattern; return {path relative to root: true class}."""
    rng = np.random.default_rng(seed)
    truth = {}
    for cls in PATTERNS:
        for i in range(n):
            rel = f"{cls}/{i}.png" if labelled else f"{cls}_{i}.png"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_to_uint8(_pattern(cls, rng, size), mode, rng), mode=mode).save(path)
            truth[rel] = cls
    return truth


def _pattern_arrays(n: int, *, seed: int, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """RGB pattern images as float N×3×H×W in [0, 1] and their class names."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for cls in PATTERNS:
        for _ in range(n):
            X.append(_to_uint8(_pattern(cls, rng, size), "RGB", rng).transpose(2, 0, 1) / 255.0)
            y.append(cls)
    return np.stack(X), np.asarray(y)


def _read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _assert_clean_error(code, err, *needles, out_dir=None):
    """Exit 2, one `error: ...` line, no traceback, nothing left where the run would have gone."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    if out_dir is not None:
        assert not out_dir.exists()
        assert [p for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}")] == []


def _digits_split(run):
    """The raw digits rows of a run's train/val/test split, recomputed the way `fit` splits."""
    table = load_table("digits")
    y, _ = encode_labels(table.y)
    data = run.config["data"]
    train, val, test = split_indices(len(y), y=y, val_fraction=data["val_fraction"],
                                     test_fraction=data["test_fraction"], seed=run.config["train"]["seed"],
                                     stratify=True)
    return table, y, {"train": train, "val": val, "test": test}


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    """One short digits + cnn run shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("digits") / "run"
    return nnrecipe.fit("digits", overrides=CNN + ["train.epochs=6"], out=out)


# 1. digits as images -------------------------------------------------------------------------

def test_digits_cnn_sees_1x8x8_images_and_learns(digits_cnn):
    run = digits_cnn
    assert run.image_shape == (1, 8, 8) and run.transform.input_shape == (1, 8, 8)
    assert run.info["architecture"]["in_channels"] == 1 and run.info["architecture"]["image_size"] == [8, 8]
    assert any(isinstance(m, nn.Conv2d) for m in run.model.modules())
    assert run.metrics["augmented"] is True  # image data: augmentation on by default
    # per-channel statistics of the training split's pixels (population σ), applied at predict time
    table, _, split = _digits_split(run)
    channel = run.info["transform"]["channel"]
    np.testing.assert_allclose(channel["mean"], [table.X[split["train"]].mean()], rtol=1e-12)
    np.testing.assert_allclose(channel["std"], [table.X[split["train"]].std()], rtol=1e-12)
    assert run.info["transform"]["standardizer"] is None  # no per-pixel z-scores for image models
    # without whitening there is nothing for preprocess.safetensors to hold
    assert not (run.dir / "preprocess.safetensors").exists()
    assert run.metrics["test"]["accuracy"] >= 0.85  # chance is 0.1; this run measured ~0.96


def test_digits_mlp_sees_64_features_and_is_not_augmented(tmp_path):
    run = nnrecipe.fit("digits", overrides=["train.epochs=1", "model.hidden=[16]"], out=tmp_path / "run")
    assert run.image_shape is None and run.transform.input_shape == (64,)
    assert not any(isinstance(m, nn.Conv2d) for m in run.model.modules())
    assert run.metrics["augmented"] is False  # vectors are never augmented


# 2. image folders and .npz: fit → predict ----------------------------------------------------

@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("L", 1)])
def test_image_folder_round_trip(tmp_path, capsys, mode, channels):
    _write_folder(tmp_path / "train", 30, seed=0, mode=mode)
    new_truth = _write_folder(tmp_path / "new", 8, seed=1, mode=mode, labelled=False)
    out = tmp_path / "run"
    argv = ["fit", "--data", str(tmp_path / "train"), "--model", "cnn", "--image-size", "12",
            "--out", str(out), "--quiet",
            *set_args(["train.epochs=15", "model.channels=[8,16]", "model.convs_per_stage=1",
                       "train.batch_size=16", "optimizer.lr=0.01"])]
    assert main(argv) == 0, capsys.readouterr().err
    info = json.loads((out / "model.json").read_text())
    assert info["transform"]["image_shape"] == [channels, 12, 12]  # 16×16 files resized to 12×12
    assert info["class_names"] == list(PATTERNS)

    preds = tmp_path / "preds.csv"
    assert main(["predict", str(out), "--data", str(tmp_path / "new"), "--out", str(preds)]) == 0
    rows = _read_csv(preds)
    assert list(rows[0]) == ["file", "prediction", *(f"prob_{c}" for c in PATTERNS)]
    assert sorted(r["file"] for r in rows) == sorted(new_truth)  # every new image, once
    for r in rows:
        assert sum(float(r[f"prob_{c}"]) for c in PATTERNS) == pytest.approx(1.0, abs=1e-5)
    agree = np.mean([r["prediction"] == new_truth[r["file"]] for r in rows])
    assert agree >= 0.9  # three easy patterns; measured 1.0

    # evaluate on a new labelled folder agrees with predict on the same files
    labelled = _write_folder(tmp_path / "labelled", 6, seed=2, mode=mode)
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out), "--data", str(tmp_path / "labelled"), "--out", str(report)]) == 0
    assert main(["predict", str(out), "--data", str(tmp_path / "labelled"), "--out", str(preds)]) == 0
    rows = _read_csv(preds)
    assert sorted(r["file"] for r in rows) == sorted(labelled)  # "center/0.png", ...
    expected = np.mean([r["prediction"] == labelled[r["file"]] for r in rows])
    assert json.loads(report.read_text())["accuracy"] == pytest.approx(expected)


def test_npz_images_nchw_and_nhwc_are_detected_and_agree(tmp_path, capsys):
    X, y = _pattern_arrays(25, seed=0)  # N×3×12×12
    X_new, y_new = _pattern_arrays(6, seed=1)
    np.savez(tmp_path / "nchw.npz", X=X, y=y)
    np.savez(tmp_path / "nhwc.npz", X=X.transpose(0, 2, 3, 1), y=y)
    np.savez(tmp_path / "new_nchw.npz", X=X_new)
    np.savez(tmp_path / "new_nhwc.npz", X=X_new.transpose(0, 2, 3, 1))
    fast = ["train.epochs=12", "model.channels=[8,16]", "model.convs_per_stage=1", "train.batch_size=16",
            "optimizer.lr=0.01"]
    outputs = {}
    for layout in ("nchw", "nhwc"):
        out = tmp_path / f"run_{layout}"
        assert main(["fit", "--data", str(tmp_path / f"{layout}.npz"), "--model", "cnn", "--out", str(out),
                     "--quiet", *set_args(fast)]) == 0, capsys.readouterr().err
        # 3×12×12 either way (a wrong guess would give 12×12×3 or 12×3×12)
        assert json.loads((out / "model.json").read_text())["transform"]["image_shape"] == [3, 12, 12]
        for new in ("nchw", "nhwc"):
            preds = tmp_path / f"{layout}_{new}.csv"
            assert main(["predict", str(out), "--data", str(tmp_path / f"new_{new}.npz"), "--out", str(preds)]) == 0
            outputs[layout, new] = [r["prediction"] for r in _read_csv(preds)]
        # the same images in either layout give the same predictions, rows in input order
        assert outputs[layout, "nchw"] == outputs[layout, "nhwc"]
        assert np.mean(np.asarray(outputs[layout, "nchw"]) == y_new) >= 0.9


def test_npz_single_channel_nhw(tmp_path, capsys):
    X, y = _pattern_arrays(10, seed=0)
    np.savez(tmp_path / "nhw.npz", X=X[:, 0], y=y)  # N×H×W: one channel
    out = tmp_path / "run"
    assert main(["fit", "--data", str(tmp_path / "nhw.npz"), "--model", "cnn", "--out", str(out), "--quiet",
                 *set_args(TINY)]) == 0, capsys.readouterr().err
    assert json.loads((out / "model.json").read_text())["transform"]["image_shape"] == [1, 12, 12]


# 3. bad image input at the CLI ----------------------------------------------------------------

def test_corrupt_images_are_named_or_skipped_and_counted(tmp_path, capsys):
    folder = tmp_path / "imgs"
    _write_folder(folder, 8, seed=0, mode="L")
    png = (folder / "left/0.png").read_bytes()
    (folder / "left/truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "right/junk.png").write_bytes(b"this is not a png")
    out = tmp_path / "run"
    code = main(["fit", "--data", str(folder), "--model", "cnn", "--out", str(out), "--quiet", *set_args(TINY)])
    err = capsys.readouterr().err
    _assert_clean_error(code, err, "left/truncated.png", "--skip-bad-images", out_dir=out)

    code = main(["fit", "--data", str(folder), "--model", "cnn", "--out", str(out), "--skip-bad-images",
                 *set_args(TINY)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "skipped 2 unreadable images" in stdout
    assert json.loads((out / "metrics.json").read_text())["skipped_images"] == 2
    assert sum(map(sum, json.loads((out / "metrics.json").read_text())["test"]["confusion_matrix"])) > 0


def test_empty_class_folder_is_named(tmp_path, capsys):
    folder = tmp_path / "imgs"
    _write_folder(folder, 6, seed=0, mode="L")
    (folder / "zebra").mkdir()
    out = tmp_path / "run"
    code = main(["fit", "--data", str(folder), "--model", "cnn", "--out", str(out), *set_args(TINY)])
    _assert_clean_error(code, capsys.readouterr().err, "'zebra'", out_dir=out)
    # a class folder whose only file is unreadable is empty too once that file is skipped
    (folder / "zebra" / "bad.png").write_bytes(b"\x89PNG broken")
    code = main(["fit", "--data", str(folder), "--model", "cnn", "--out", str(out), "--skip-bad-images",
                 *set_args(TINY)])
    _assert_clean_error(code, capsys.readouterr().err, "'zebra'", out_dir=out)


def test_mixed_gray_and_colour_images_are_converted(tmp_path, capsys):
    # README: RGB if any image is colour, else gray; data.channels forces 1 or 3.
    folder = tmp_path / "imgs"
    _write_folder(folder, 8, seed=0, mode="L")
    rng = np.random.default_rng(5)
    for cls in PATTERNS:
        Image.fromarray(_to_uint8(_pattern(cls, rng), "RGB", rng), mode="RGB").save(folder / cls / "colour.png")
    for forced, channels in ((None, 3), (1, 1)):
        out = tmp_path / f"run{channels}"
        extra = [f"data.channels={forced}"] if forced else []
        assert main(["fit", "--data", str(folder), "--model", "cnn", "--out", str(out), "--quiet",
                     *set_args(TINY + extra)]) == 0, capsys.readouterr().err
        assert json.loads((out / "model.json").read_text())["transform"]["image_shape"] == [channels, 16, 16]
    # predicting gray images with the RGB model converts them too; a corrupt one is named
    new = tmp_path / "new"
    new_truth = _write_folder(new, 2, seed=3, mode="L", labelled=False)
    assert main(["predict", str(tmp_path / "run3"), "--data", str(new), "--out", str(tmp_path / "p.csv")]) == 0
    assert sorted(r["file"] for r in _read_csv(tmp_path / "p.csv")) == sorted(new_truth)
    (new / "zz_broken.png").write_bytes(b"nope")
    capsys.readouterr()
    code = main(["predict", str(tmp_path / "run3"), "--data", str(new)])
    _assert_clean_error(code, capsys.readouterr().err, "zz_broken.png")


# 4. whitening ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zca", "patch_zca"])
def test_image_whitening_round_trip(tmp_path, capsys, kind):
    run = nnrecipe.fit("digits", overrides=CNN + ["train.epochs=4", f"data.whiten={kind}"], out=tmp_path / "run")
    assert run.info["transform"]["whiten"] == kind
    saved = (run.dir / "preprocess.safetensors")
    assert saved.is_file()
    first_conv = next(m for m in run.model.modules() if isinstance(m, nn.Conv2d))
    k2 = 9 if kind == "patch_zca" else 1  # patch ZCA: C channels → C·k² whitened ones (k = 3)
    assert first_conv.in_channels == k2 and run.transform.input_shape == (k2, 8, 8)

    loaded = nnrecipe.load(run.dir)
    table, y, split = _digits_split(run)
    # the saved transform reproduces the in-memory one: same probabilities on every raw image
    np.testing.assert_allclose(loaded.predict_proba(table.X), run.predict_proba(table.X), rtol=0, atol=1e-9)
    # and the one used in training: raw test rows through the saved run give the reported accuracy
    pred = loaded.predict(table.X[split["test"]])
    names = np.asarray(run.class_names, dtype=object)
    assert np.mean(pred == names[y[split["test"]]]) == pytest.approx(run.metrics["test"]["accuracy"])

    # the CLI predicts raw N×H×W images from an .npz with the stored whitening
    np.savez(tmp_path / "test.npz", X=table.X[split["test"]].reshape(-1, 8, 8))
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(run.dir), "--data", str(tmp_path / "test.npz"), "--out", str(preds)]) == 0
    assert [r["prediction"] for r in _read_csv(preds)] == list(pred)
    # `summary RUN` sees the whitened input (patch ZCA's 9 channels)
    capsys.readouterr()
    assert main(["summary", str(run.dir)]) == 0
    assert f"input: {k2}×8×8" in capsys.readouterr().out


def test_pca_whitening_on_vectors(blobs_csv, tmp_path):
    run = nnrecipe.fit(str(blobs_csv), overrides=["train.epochs=5", "model.hidden=[16]", "optimizer.lr=0.01",
                                                  "data.whiten=pca", "data.whiten_eps=1e-9"], out=tmp_path / "run")
    assert (run.dir / "preprocess.safetensors").is_file()
    table = load_table(str(blobs_csv))
    y, _ = encode_labels(table.y)
    train, _, _ = split_indices(len(y), y=y, val_fraction=0.1, test_fraction=0.2, seed=0, stratify=True)
    Z = run.transform.apply(table.X[train])
    # with ε → 0, PCA-whitened training rows have zero mean and identity covariance
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(np.cov(Z, rowvar=False, bias=True), np.eye(3), atol=1e-6)
    loaded = nnrecipe.load(run.dir)
    np.testing.assert_allclose(loaded.predict_proba(table.X), run.predict_proba(table.X), rtol=0, atol=1e-9)
    text = nnrecipe.predict(loaded, str(blobs_csv))
    assert [r["prediction"] for r in csv.DictReader(text.splitlines())] == list(run.predict(table.X))


# 5. nnrecipe summary ----------------------------------------------------------------------------

def _summary_table(text: str) -> tuple[list[tuple[str, int]], int]:
    """(layer name, params) rows and the total from `nnrecipe summary` output."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if set(line) == {"-"}]
    rows = []
    for line in lines[rules[0] + 1: rules[1]]:
        # layer, type, output shape, params (with thousands commas), MACs (e.g. "221 K")
        match = re.match(r"(\S+)\s+\S+\s+\S+\s+([\d,]+)\s+\S+( \S)?$", line)
        assert match, line
        rows.append((match.group(1), int(match.group(2).replace(",", ""))))
    total = int(re.search(r"total params:\s+([\d,]+)", text).group(1).replace(",", ""))
    return rows, total


def test_summary_of_resnet_matches_the_model(capsys):
    options = ["model.widths=[8,16]", "model.blocks=[1,1]"]
    assert main(["summary", "--model", "resnet", "--input-shape", "3,32,32", "--classes", "10",
                 *set_args(options)]) == 0
    rows, total = _summary_table(capsys.readouterr().out)
    cfg = resolve_config(overrides=["model.name=resnet", *options])
    model = build_model(architecture(cfg, input_shape=(3, 32, 32), out_features=10))
    assert total == sum(p.numel() for p in model.parameters())
    assert sum(params for _, params in rows) == total
    by_name = dict(rows)
    assert by_name["features.stem.conv"] == 3 * 3 * 3 * 8  # K·K·C_in·C_out, no bias before BN
    assert by_name["head"] == 16 * 10 + 10


def test_summary_of_cnn_matches_hand_count(capsys):
    assert main(["summary", "--model", "cnn", "--input-shape", "3,32,32", "--classes", "10",
                 *set_args(["model.channels=[8,16]", "model.convs_per_stage=2"])]) == 0
    _, total = _summary_table(capsys.readouterr().out)
    widths = [3, 8, 8, 16, 16]  # two 3×3 convs per stage, each followed by BN (γ, β)
    convs = sum(3 * 3 * c_in * c_out + 2 * c_out for c_in, c_out in zip(widths, widths[1:]))
    assert total == convs + 16 * 10 + 10


def test_summary_of_a_run_dir(digits_cnn, capsys):
    assert main(["summary", str(digits_cnn.dir)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("model: cnn  input: 1×8×8")
    _, total = _summary_table(text)
    assert total == sum(p.numel() for p in digits_cnn.model.parameters())


# 6. augmentation sees training batches only --------------------------------------------------

HEAVY = ["augment.erasing=1.0", "augment.erasing_scale=0.5", "augment.rotation=30", "augment.crop_padding=2",
         "augment.brightness=0.5", "augment.contrast=0.5", "augment.mixup=0.4"]


def test_evaluation_inputs_are_not_augmented_in_fit(tmp_path):
    run = nnrecipe.fit("digits", overrides=CNN + HEAVY + ["train.epochs=3"], out=tmp_path / "run")
    assert run.metrics["augmented"] is True
    prepared = prepare_for(build_config(run.config))
    tensors = to_tensors(prepared, torch.device("cpu"))
    with torch.no_grad():
        logits = {k: run.model.eval()(tensors[k][0]) for k in ("val", "test")}
    # test metrics: the confusion matrix of a plain eval forward on the stored test tensors
    X_test, y_test = tensors["test"]
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y_test.numpy(), logits["test"].argmax(1).numpy()), 1)
    assert run.metrics["test"]["confusion_matrix"] == confusion.tolist()
    # the loop's validation loss at the best epoch (whose weights were restored) is the plain one
    best = next(r for r in _read_csv(run.dir / "history.csv") if int(r["epoch"]) == run.metrics["best_epoch"])
    y_val = tensors["val"][1]
    expected = F.cross_entropy(logits["val"], y_val, label_smoothing=run.config["regularization"]["label_smoothing"])
    assert float(best["val_loss"]) == pytest.approx(expected.item(), rel=1e-5)


def test_trainer_augments_every_training_batch_and_no_evaluation_batch():
    cfg = resolve_config(overrides=CNN + HEAVY + ["train.epochs=2"])
    prepared = prepare_for(cfg)
    tensors = to_tensors(prepared, torch.device("cpu"))
    X, y = tensors["train"]
    X_val, y_val = tensors["val"]
    model = make_model(cfg, architecture(cfg, input_shape=prepared.input_shape, out_features=10),
                       device=torch.device("cpu"), init_batch=X[:32])
    augmenter = make_augmenter(cfg.augment, num_classes=10)
    raw, augmented = [], []

    def recording_augment(xb, yb, generator):
        xa, target = augmenter(xb, yb, generator)
        raw.append(xb)
        augmented.append(xa)
        return xa, target

    seen = []  # (training mode, input) of every forward
    model.register_forward_pre_hook(lambda module, args: seen.append((module.training, args[0])))
    trainer = make_trainer(cfg, model, task="classification", train_rows=len(X), callbacks=[],
                           augment=recording_augment)
    trainer.fit(X, y, X_val, y_val, epochs=2, batch_size=32, generator=torch.Generator().manual_seed(0))
    train_inputs = [x for training, x in seen if training]
    eval_inputs = [x for training, x in seen if not training]
    steps = -(-len(X) // 32) - (len(X) % 32 == 1)  # the loop drops a 1-row last batch (BatchNorm)
    assert len(augmented) == len(train_inputs) == 2 * steps
    assert all(x is a for x, a in zip(train_inputs, augmented))  # each training batch went through it
    assert not any(torch.equal(r, a) for r, a in zip(raw, augmented))  # and was changed by it
    assert len(eval_inputs) == 2 and all(torch.equal(x, X_val) for x in eval_inputs)  # val: untouched
