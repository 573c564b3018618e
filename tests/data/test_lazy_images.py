"""data.lazy: an image folder scanned, then decoded batch by batch, trains exactly like the folder
read into memory.

The oracle is the in-memory path itself (`load_image_folder` + `ChannelNormalizer.fit` +
`InputTransform.apply`): the scan must give its files, labels, shape and per-channel statistics,
the dataset its pixels element for element, and a fit its history.csv, metrics and predictions.
The folder mixes colour and gray PNGs and two sizes, so gray→RGB broadcasting and resizing to the
first image's size are exercised; the classes differ in brightness on the left half.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import nnrecipe
import nnrecipe.data.images
import nnrecipe.data.sources
import nnrecipe.prepare
from nnrecipe.cli import main
from nnrecipe.config import resolve_config
from nnrecipe.data.images import load_image_folder
from nnrecipe.data.lazy_images import ImageFolderDataset, scan_image_folder
from nnrecipe.data.normalize import ChannelNormalizer
from nnrecipe.data.transform import InputTransform
from nnrecipe.errors import UserError
from testutil import set_args
from nnrecipe.calibrate import recalibrate
from nnrecipe.compress import compress
from nnrecipe.attack import attack
from nnrecipe.doctor import doctor

CLASSES = {"dark": 0, "mid": 60, "bright": 120}  # added to the left half of the image
TINY = ["model.name=cnn", "model.channels=[4]", "model.convs_per_stage=1", "train.epochs=2",
        "train.batch_size=8", "optimizer.lr=0.01", "augment.enabled=false"]


def _write_folder(root, n: int = 14, seed: int = 0):
    """n PNGs per class: 10×10 RGB, every 4th one gray, every 5th one 12×12 (resized to 10×10)."""
    rng = np.random.default_rng(seed)
    for cls, shift in CLASSES.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            side = 12 if i % 5 == 4 else 10
            img = rng.integers(0, 120, (side, side, 3))
            img[:, : side // 2] += shift
            img = img.astype(np.uint8)
            im = Image.fromarray(img[:, :, 0], mode="L") if i % 4 == 1 else Image.fromarray(img, mode="RGB")
            im.save(root / cls / f"{i:02d}.png")
    return root


def forbid_folder_loading(monkeypatch) -> None:
    """Make the in-memory folder reader fail: a data.lazy path must never call it."""
    def never(*args, **kwargs):
        raise AssertionError("load_image_folder was called with data.lazy=true")

    monkeypatch.setattr(nnrecipe.data.images, "load_image_folder", never)
    monkeypatch.setattr(nnrecipe.data.sources, "load_image_folder", never)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _write_folder(tmp_path_factory.mktemp("lazy") / "imgs")


@pytest.fixture(scope="module")
def in_memory_run(folder, tmp_path_factory):
    return nnrecipe.fit(str(folder), overrides=TINY, out=tmp_path_factory.mktemp("mem") / "run")


def _history(run_dir) -> np.ndarray:
    with open(run_dir / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "grad_norm")
    return np.array([[float(r[k]) for k in keys] for r in rows])


def _predictions(run_dir) -> np.ndarray:
    with open(run_dir / "predictions.csv", newline="") as fh:
        return np.array([[float(v) for v in row] for row in list(csv.reader(fh))[1:]])


def _same_fit(lazy, memory) -> None:
    np.testing.assert_allclose(_history(lazy.dir), _history(memory.dir), rtol=0, atol=1e-5)
    for split in ("val", "test"):
        a, b = lazy.metrics[split], memory.metrics[split]
        assert a["accuracy"] == b["accuracy"]
        assert a["confusion_matrix"] == b["confusion_matrix"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["ece"] == pytest.approx(b["ece"], abs=1e-5)
    assert lazy.metrics["split_sizes"] == memory.metrics["split_sizes"]
    assert lazy.info["temperature"] == pytest.approx(memory.info["temperature"], abs=1e-4)
    np.testing.assert_allclose(_predictions(lazy.dir), _predictions(memory.dir), atol=1e-5)


# the scan and the dataset against the in-memory reader --------------------------------------

@pytest.mark.parametrize("channels,image_size", [(None, None), (1, None), (3, 8)])
def test_scan_and_dataset_match_the_in_memory_reader(folder, channels, image_size):
    scan = scan_image_folder(folder, str(folder), image_size=image_size, channels=channels)
    table = load_image_folder(folder, str(folder), require_target=True, image_size=image_size, channels=channels)
    assert scan.files == table.row_names and list(scan.labels) == list(table.y)
    assert scan.image_shape == table.image_shape == ((1 if channels == 1 else 3), *(2 * [image_size or 10]))
    rows = np.arange(1, len(table.X), 2)  # a "training split": every other image
    reference = ChannelNormalizer.fit(table.X[rows], table.image_shape)
    streamed = scan.channel_normalizer(rows)
    np.testing.assert_allclose(streamed.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.std, reference.std, rtol=1e-12)
    transform = InputTransform(channel=reference, image_shape=table.image_shape)
    targets = np.arange(len(rows))
    dataset = scan.dataset(rows, targets, transform)
    model_input = transform.apply(table.X[rows])
    for j in range(len(rows)):
        np.testing.assert_array_equal(dataset.read(j).ravel(), table.X[rows[j]])  # same decoding, bit for bit
        x, y = dataset[j]
        assert x.dtype == torch.float32 and torch.equal(x, torch.as_tensor(model_input[j], dtype=torch.float32))
        assert y.item() == targets[j]


def test_constant_channel_has_zero_std_as_in_memory(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            img = np.full((4, 4, 3), 7, dtype=np.uint8)
            img[:, :, 0] = np.arange(16).reshape(4, 4) * (i + 1)
            Image.fromarray(img).save(tmp_path / cls / f"{i}.png")
    scan = scan_image_folder(tmp_path, str(tmp_path))
    table = load_image_folder(tmp_path, str(tmp_path), require_target=True)
    rows = np.arange(len(table.X))
    streamed, reference = scan.channel_normalizer(rows), ChannelNormalizer.fit(table.X, table.image_shape)
    assert list(reference.std[1:]) == [0.0, 0.0] and list(streamed.std[1:]) == [0.0, 0.0]
    np.testing.assert_allclose(streamed.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.std[0], reference.std[0], rtol=1e-12)


def test_unreadable_files_are_reported_and_skipped_as_in_memory(folder, tmp_path):
    bad = shutil.copytree(folder, tmp_path / "imgs")
    png = (bad / "mid/00.png").read_bytes()
    (bad / "mid/05.png").write_bytes(png[: len(png) // 2])  # truncated
    (bad / "dark/03.png").write_bytes(b"not a png")
    with pytest.raises(UserError) as in_memory:
        load_image_folder(bad, "imgs", require_target=True)
    with pytest.raises(UserError) as lazy:
        scan_image_folder(bad, "imgs", workers=2)
    assert str(lazy.value) == str(in_memory.value) and "dark/03.png" in str(lazy.value)
    scan = scan_image_folder(bad, "imgs", skip_bad_images=True, workers=2)
    table = load_image_folder(bad, "imgs", require_target=True, skip_bad_images=True)
    assert scan.skipped == table.skipped == 2
    assert scan.files == table.row_names  # so the seeded split is the same


# fit: lazy == in memory --------------------------------------------------------------------

def test_lazy_fit_equals_in_memory_fit_without_loading_the_folder(folder, in_memory_run, tmp_path, monkeypatch,
                                                                   capsys):
    forbid_folder_loading(monkeypatch)
    lazy = nnrecipe.fit(str(folder), overrides=TINY + ["data.lazy=true"], out=tmp_path / "lazy")
    monkeypatch.undo()
    _same_fit(lazy, in_memory_run)
    assert yaml.safe_load((lazy.dir / "config.yaml").read_text())["data"]["lazy"] is True
    ours, theirs = lazy.info["transform"]["channel"], in_memory_run.info["transform"]["channel"]
    np.testing.assert_allclose(ours["mean"], theirs["mean"], rtol=1e-12)
    np.testing.assert_allclose(ours["std"], theirs["std"], rtol=1e-12)
    assert lazy.info["feature_names"] == in_memory_run.info["feature_names"]
    # the run directory is an ordinary one: predict reads the folder with the saved statistics
    outputs = []
    for run in (lazy, in_memory_run):
        out = tmp_path / f"{run.dir.name}.csv"
        assert main(["predict", str(run.dir), "--data", str(folder), "--out", str(out)]) == 0, capsys.readouterr().err
        with open(out, newline="") as fh:
            outputs.append([row[2:] for row in csv.reader(fh)][1:])
    np.testing.assert_allclose(np.array(outputs[0], dtype=float), np.array(outputs[1], dtype=float), atol=1e-5)


def test_lazy_datasets_hold_paths_not_pixels(folder):
    cfg = resolve_config(overrides=TINY + ["data.lazy=true", f"data.source={folder}"])
    prepared = nnrecipe.prepare.prepare_lazy(cfg)
    total = sum(len(ds) for ds in prepared.X.values())
    assert total == 3 * 14
    for ds in prepared.X.values():
        assert isinstance(ds, ImageFolderDataset)
        assert all(isinstance(f, str) for f in ds.files)
        for value in vars(ds).values():  # nothing that grows with the pixels: at most one number per image
            if isinstance(value, (np.ndarray, torch.Tensor)):
                assert value.size if isinstance(value, np.ndarray) else value.numel() <= len(ds)


def test_two_persistent_workers_and_augmentation_give_the_same_fit(folder, tmp_path):
    # augmentation acts on the batch on the device, drawing from the batch-order generator, which the
    # DataLoader path leaves alone: so the augmented batches match too
    augmented = [o for o in TINY if o != "augment.enabled=false"] + ["augment.mixup=0.2"]
    memory = nnrecipe.fit(str(folder), overrides=augmented, out=tmp_path / "memory")
    lazy = nnrecipe.fit(str(folder), overrides=augmented + ["data.lazy=true", "train.workers=2",
                                                            "train.persistent_workers=true"], out=tmp_path / "lazy")
    assert lazy.metrics["augmented"] and memory.metrics["augmented"]
    _same_fit(lazy, memory)


# bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
def test_image_corrupted_after_the_scan_is_a_one_line_error(folder, in_memory_run, tmp_path, monkeypatch, capsys,
                                                             workers):
    data = shutil.copytree(folder, tmp_path / "imgs")
    scan = nnrecipe.prepare.scan_image_folder
    broken = {}

    def scan_then_corrupt(*args, **kwargs):
        result = scan(*args, **kwargs)
        broken["rel"] = result.files[0]
        broken["bytes"] = (data / broken["rel"]).read_bytes()
        (data / broken["rel"]).write_bytes(b"corrupted while training")
        return result

    monkeypatch.setattr(nnrecipe.prepare, "scan_image_folder", scan_then_corrupt)
    out = tmp_path / "run"
    code = main(["fit", "--data", str(data), "--out", str(out), "--quiet",
                 *set_args(TINY + ["data.lazy=true", f"train.workers={workers}"])])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    # the in-memory reader's message for the same file
    assert lines[0].startswith(f"error: cannot read image '{broken['rel']}' (UnidentifiedImageError"), lines[0]
    assert "--skip-bad-images" in lines[0]
    # no half-written run: the directory stays marked INCOMPLETE (resumable), with no final files
    assert (out / "INCOMPLETE").exists() and not (out / "model.safetensors").exists()
    with pytest.raises(UserError, match="incomplete"):
        nnrecipe.load(out)
    if workers == 0:  # the file replaced, --resume finishes the very same fit
        monkeypatch.undo()
        (data / broken["rel"]).write_bytes(broken["bytes"])
        assert main(["fit", "--resume", str(out), "--quiet"]) == 0, capsys.readouterr().err
        np.testing.assert_allclose(_history(out), _history(in_memory_run.dir), rtol=0, atol=1e-5)


@pytest.mark.parametrize("extra,key", [(["data.whiten=zca"], "data.whiten"), (["model.name=mlp"], "model.name"),
                                       (["train.ensemble=2"], "train.ensemble"),
                                       (["adversarial.method=fgsm"], "adversarial.method"),
                                       (["train.loader=tensor"], "train.loader")])
def test_what_cannot_stream_is_refused_naming_the_key(folder, tmp_path, extra, key):
    with pytest.raises(UserError) as exc:
        nnrecipe.fit(str(folder), overrides=TINY + ["data.lazy=true"] + extra, out=tmp_path / "run")
    assert exc.value.where == key and key in exc.value.what
    assert not (tmp_path / "run").exists()


def test_lazy_needs_an_image_folder(tmp_path):
    with pytest.raises(UserError) as exc:
        nnrecipe.fit("digits", overrides=TINY + ["data.lazy=true"], out=tmp_path / "run")
    assert exc.value.where == "data.lazy" and "not a folder" in exc.value.what


@pytest.mark.parametrize("extra", [["model.name=vae"], ["model.name=word2vec"], ["model.name=lstm"]])
def test_lazy_is_refused_for_models_that_read_their_data_in_memory(folder, tmp_path, extra):
    with pytest.raises(UserError) as exc:
        nnrecipe.fit(str(folder), overrides=TINY + ["data.lazy=true"] + extra, out=tmp_path / "run")
    assert exc.value.where == "data.lazy" and extra[0].split("=")[1] in exc.value.what
    assert not (tmp_path / "run").exists()


def test_calibrate_streams_a_lazy_runs_validation_split(folder, tmp_path, monkeypatch):
    """`nnrecipe calibrate` on a data.lazy run refits T on the streamed validation images (never the
    whole folder in memory) and lands on the temperature the fit found on the same split."""

    lazy = nnrecipe.fit(str(folder), overrides=TINY + ["data.lazy=true"], out=tmp_path / "lazy")

    forbid_folder_loading(monkeypatch)
    report = recalibrate(lazy.dir)
    assert report["source"] == "validation split"
    assert report["temperature"] == pytest.approx(lazy.metrics["calibration"]["temperature"], rel=1e-6)
    assert report["nll_before"] == pytest.approx(lazy.metrics["calibration"]["nll_before"], rel=1e-6)


def test_compress_streams_a_lazy_run_and_matches_the_in_memory_run(folder, in_memory_run, tmp_path, monkeypatch):
    """`nnrecipe compress` on a data.lazy run reads the folder through the DataLoader (the calibration
    sample, validation and test splits) and measures what it measures on the in-memory twin."""
    import shutil


    lazy = nnrecipe.fit(str(folder), overrides=TINY + ["data.lazy=true"], out=tmp_path / "lazy")
    memory_dir = shutil.copytree(in_memory_run.dir, tmp_path / "mem")
    theirs = compress(memory_dir, max_drop=1.0)

    forbid_folder_loading(monkeypatch)
    ours = compress(lazy.dir, max_drop=1.0)
    assert [v["name"] for v in ours["variants"]] == [v["name"] for v in theirs["variants"]]
    for a, b in zip(ours["variants"], theirs["variants"]):
        assert a["val_metric"] == pytest.approx(b["val_metric"], abs=1e-9), a["name"]
        assert a["test_metric"] == pytest.approx(b["test_metric"], abs=1e-9), a["name"]
    assert ours["chosen"] == theirs["chosen"]
    assert (lazy.dir / "compressed" / "model.safetensors").is_file()


def test_attack_streams_a_lazy_runs_test_split(folder, in_memory_run, tmp_path, monkeypatch):

    lazy = nnrecipe.fit(str(folder), overrides=TINY + ["data.lazy=true"], out=tmp_path / "lazy")
    theirs = attack(in_memory_run.dir, eps=[0.05, 0.3], method="fgsm", write=False)

    forbid_folder_loading(monkeypatch)
    ours = attack(lazy.dir, eps=[0.05, 0.3], method="fgsm")
    assert ours["rows"] == theirs["rows"] > 0
    assert ours["clean_accuracy"] == theirs["clean_accuracy"]
    assert [r["accuracy"] for r in ours["results"]] == [r["accuracy"] for r in theirs["results"]]
    assert (lazy.dir / "attack.json").is_file()


def test_doctor_streams_a_lazy_folder_like_the_in_memory_one(folder, tmp_path, monkeypatch):
    """`nnrecipe doctor --set data.lazy=true` runs the six steps on DatasetBatches (indexed like
    tensors) without loading the folder, and measures what the in-memory doctor measures."""

    sets = TINY + ["train.epochs=1"]
    theirs = doctor(str(folder), overrides=sets, out=tmp_path / "mem")

    forbid_folder_loading(monkeypatch)
    ours = doctor(str(folder), overrides=sets + ["data.lazy=true"], out=tmp_path / "lazy")
    assert ours["initial_loss"]["measured"] == pytest.approx(theirs["initial_loss"]["measured"], rel=1e-5)
    assert ours["overfit_small"]["iterations"] == theirs["overfit_small"]["iterations"]
    assert ours["lr_find"]["suggested_lr"] == pytest.approx(theirs["lr_find"]["suggested_lr"], rel=1e-3)
    assert len(ours["search"]["trials"]) == len(theirs["search"]["trials"])
    values = [t["value"] for t in sorted(ours["search"]["trials"], key=lambda t: t["number"])]
    expected = [t["value"] for t in sorted(theirs["search"]["trials"], key=lambda t: t["number"])]
    assert values == pytest.approx(expected, rel=1e-4)
    assert (tmp_path / "lazy" / "doctor.json").is_file()
