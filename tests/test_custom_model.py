"""The user's own nn.Module and in-memory data through `nnrecipe.fit` (issue: bring your own model).

Arrays, tensors, Datasets and DataLoaders become the same table; the module gets the recipe
(its own init kept, temperature scaling, run directory, report, load, predict, resume), and bad
input is a one-line UserError with nothing written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nnrecipe
from nnrecipe.errors import UserError
from testutil import assert_same_run, rewind
from usermodels import FlatMLP, ShapeRecorder, TinyCNN

TESTS = Path(__file__).parent
FAST = ["train.epochs=8", "optimizer.lr=3e-3", "train.log_every=5"]


@pytest.fixture(scope="module")
def digits_images():
    d = load_digits()
    return d.images[:, None].astype(np.float32), d.target


@pytest.fixture(scope="module")
def cnn_run(digits_images, tmp_path_factory):
    X, y = digits_images
    out = tmp_path_factory.mktemp("own") / "run"
    return nnrecipe.fit((X, y), model=TinyCNN(width=8), model_kwargs={"width": 8}, overrides=FAST, out=out)


def test_user_cnn_run_holds_the_recipe_and_its_class(cnn_run):
    info = json.loads((cnn_run.dir / "model.json").read_text())
    assert info["architecture"]["name"] == "custom"
    assert info["architecture"]["class"] == "usermodels:TinyCNN"
    assert info["architecture"]["kwargs"] == {"width": 8}
    assert info["architecture"]["input_shape"] == [1, 8, 8]
    metrics = json.loads((cnn_run.dir / "metrics.json").read_text())
    assert metrics["calibration"]["temperature"] > 0 and metrics["calibration"]["nll_after"] <= metrics["calibration"]["nll_before"]
    assert metrics["test"]["accuracy"] > 0.5  # 8 epochs of a tiny CNN: far above chance (0.1)
    assert (cnn_run.dir / "report.html").is_file() and (cnn_run.dir / "config.yaml").is_file()
    assert "usermodels:TinyCNN" in (cnn_run.dir / "report.html").read_text()
    cfg = (cnn_run.dir / "config.yaml").read_text()
    assert "source: memory:tuple" in cfg and "name: keep" in cfg


def test_load_rebuilds_the_class_or_fills_a_given_instance(cnn_run, digits_images):
    X, _ = digits_images
    rebuilt = nnrecipe.load(cnn_run.dir)
    given = nnrecipe.load(cnn_run.dir, model=TinyCNN(width=8))
    assert isinstance(rebuilt.model, TinyCNN) and isinstance(given.model, TinyCNN)
    np.testing.assert_allclose(rebuilt.predict_proba(X[:50]), cnn_run.predict_proba(X[:50]), atol=1e-6)
    np.testing.assert_allclose(given.predict_proba(X[:50]), cnn_run.predict_proba(X[:50]), atol=1e-6)


def test_the_user_init_is_kept_unless_an_init_is_named(digits_images, tmp_path):
    X, y = digits_images
    starts = {}
    for name, sets in (("keep", []), ("auto", ["init.name=auto"])):
        torch.manual_seed(5)
        net = FlatMLP()
        starts[name] = net.state_dict()["net.1.weight"].clone()
        captured = {}

        def first_weights(module, args):  # returns None: the input is left alone
            captured.setdefault("w", module.net[1].weight.detach().clone())

        net.register_forward_pre_hook(first_weights)
        run = nnrecipe.fit((X, y), model=net, overrides=["train.epochs=1", *sets], out=tmp_path / name)
        starts[name + "_trained_from"] = captured["w"]  # the weights at the first forward pass
        assert run.config["init"]["name"] == name
    assert torch.equal(starts["keep_trained_from"], starts["keep"])  # the user's draw, untouched
    assert not torch.equal(starts["auto_trained_from"], starts["auto"])  # re-drawn by the named init


def test_arrays_tensors_datasets_and_loaders_give_the_same_run(digits_images, tmp_path):
    X, y = digits_images
    sources = {"arrays": (X, y), "tensors": (torch.as_tensor(X), torch.as_tensor(y)),
               "dataset": TensorDataset(torch.as_tensor(X), torch.as_tensor(y)),
               "loader": DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=100)}
    tests = {}
    for name, data in sources.items():
        torch.manual_seed(0)
        run = nnrecipe.fit(data, model=FlatMLP(), overrides=["train.epochs=1"], out=tmp_path / name)
        tests[name] = run.metrics["test"]
    assert all(t == tests["arrays"] for t in tests.values())


def test_given_val_and_test_replace_the_split(digits_images, tmp_path):
    X, y = digits_images
    run = nnrecipe.fit((X[:1000], y[:1000]), val=(X[1000:1300], y[1000:1300]), test=(X[1300:], y[1300:]),
                       model=FlatMLP(), overrides=["train.epochs=1"], out=tmp_path / "r")
    assert run.metrics["split_sizes"] == {"train": 1000, "val": 300, "test": 497}
    only_val = nnrecipe.fit((X[:1000], y[:1000]), val=(X[1000:1300], y[1000:1300]), model=FlatMLP(),
                            overrides=["train.epochs=1"], out=tmp_path / "v")
    assert only_val.metrics["split_sizes"] == {"train": 800, "val": 300, "test": 200}  # test: 20% of train


def test_vectors_are_standardized_unless_told_and_other_shapes_pass_untouched(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(300, 4, 5))
    y = (X[:, 0, 0] > 5).astype(int)
    net = ShapeRecorder()
    run = nnrecipe.fit((X, y), model=net, overrides=["train.epochs=1"], out=tmp_path / "raw")
    assert net.seen == (4, 5)
    np.testing.assert_array_equal(run.standardize(X[:3]), X[:3])  # no statistics for N-D inputs
    flat = X.reshape(300, 20)
    vec = nnrecipe.fit((flat, y), model=FlatMLP(n_in=20, classes=2), overrides=["train.epochs=1"], out=tmp_path / "v")
    assert abs(vec.standardize(flat).mean()) < 0.2  # standardized on train (≈ 0 overall)
    raw = nnrecipe.fit((flat, y), model=FlatMLP(n_in=20, classes=2), standardize=False,
                       overrides=["train.epochs=1"], out=tmp_path / "nostd")
    np.testing.assert_allclose(raw.standardize(flat[:3]), flat[:3])


def test_a_user_loss_for_regression(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=400)
    calls = []

    def huber(out, target):
        calls.append(1)
        return nn.functional.huber_loss(out.squeeze(-1), target)

    run = nnrecipe.fit((X, y), model=nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1)), loss=huber,
                       task="regression", overrides=["train.epochs=40", "optimizer.lr=1e-2"], out=tmp_path / "r")
    assert calls and run.task == "regression"
    assert run.metrics["test"]["r2"] > 0.9


@pytest.mark.parametrize("model, fix", [(FlatMLP(classes=3), "expected [N, 10] logits"),
                                        (FlatMLP(n_in=7), "the model fails on inputs of shape [2, 1, 8, 8]")])
def test_wrong_output_shape_is_one_line_and_writes_nothing(digits_images, tmp_path, model, fix):
    X, y = digits_images
    with pytest.raises(UserError, match=fix.replace("[", r"\[").replace("]", r"\]")):
        nnrecipe.fit((X, y), model=model, overrides=["train.epochs=1"], out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


class _Singles(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(3)


@pytest.mark.parametrize("data, match", [(_Singles(), r"data\[0\] yields a Tensor, not an \(x, y\) pair"),
                                         ((np.zeros((5, 2)), np.zeros(4)), "5 inputs but targets of shape"),
                                         ((np.zeros((5, 2)),), "not \\(X, y\\)"),
                                         ((np.array([["a", "b"]] * 4), np.zeros(4)), "dtype <U1, not numbers")])
def test_malformed_data_is_refused(data, match, tmp_path):
    with pytest.raises(UserError, match=match):
        nnrecipe.fit(data, model=FlatMLP(), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_class_that_does_not_import_needs_an_instance(cnn_run, tmp_path):
    info = json.loads((cnn_run.dir / "model.json").read_text())
    info["architecture"]["class"] = "no_such_module_xyz:Net"
    moved = tmp_path / "moved"
    import shutil
    shutil.copytree(cnn_run.dir, moved)
    (moved / "model.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="cannot import module 'no_such_module_xyz'.*nnrecipe.load\\(run_dir, model="):
        nnrecipe.load(moved)
    assert isinstance(nnrecipe.load(moved, model=TinyCNN(width=8)).model, TinyCNN)


def test_resume_of_an_in_memory_run_is_exact(digits_images, tmp_path):
    X, y = digits_images
    sets = ["train.epochs=2", "train.checkpoint_every_steps=7"]
    torch.manual_seed(0)
    full = nnrecipe.fit((X, y), model=FlatMLP(), overrides=sets, out=tmp_path / "full")
    cut = rewind(full.dir, tmp_path / "cut", seq=2)
    with pytest.raises(UserError, match="trained on data in memory"):
        nnrecipe.resume(cut)  # the config alone cannot re-read the arrays
    nnrecipe.resume(cut, data=(X, y), model=FlatMLP())
    assert_same_run(full.dir, cut)


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nnrecipe", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_model_class_fits_predicts_and_refuses_bad_classes(tmp_path):
    done = _cli("fit", "--model-class", "usermodels:FlatMLP", "--model-kwargs", '{"hidden": 8}', "--epochs", "2",
                "--out", "run", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["architecture"]["kwargs"] == {"hidden": 8}
    d = load_digits()
    np.savez(tmp_path / "few.npz", X=d.images[:6][:, None], y=d.target[:6])
    pred = _cli("predict", "run", "--data", "few.npz", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    assert len(pred.stdout.strip().splitlines()) == 7  # header + 6 rows
    for args, words in ((["--model-class", "usermodels:Nope"], "module 'usermodels' has no 'Nope'"),
                        (["--model-class", "usermodels:FlatMLP", "--model-kwargs", "{bad"], "--model-kwargs is not JSON"),
                        (["--model-class", "usermodels:FlatMLP", "--model-kwargs", '{"classes": 3}'],
                         "expected [N, 10] logits")):
        bad = _cli("fit", *args, "--epochs", "1", "--out", "bad", cwd=tmp_path)
        assert bad.returncode == 2 and bad.stderr.startswith("error: ") and words in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_post_training_commands_take_a_user_class_run(tmp_path):
    """A --model-class run on a file source: calibrate, compress, attack, export and summary
    rebuild the class from model.json like a built-in model."""
    done = _cli("fit", "--data", "breast_cancer", "--model-class", "usermodels:FlatMLP", "--model-kwargs",
                '{"n_in": 30, "classes": 2}', "--epochs", "5", "--out", "run", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for args, words in ((["calibrate", "run"], "ECE"), (["compress", "run", "--methods", "quantize"], "chosen"),
                        (["attack", "run", "--eps", "0.05", "--method", "fgsm"], "clean accuracy"),
                        (["export", "run", "--format", "onnx", "--out", "m.onnx"], "max abs difference"),
                        (["summary", "run"], "total params:")):
        out = _cli(*args, cwd=tmp_path)
        assert out.returncode == 0 and words in out.stdout, (args, out.stderr[-2000:])
    assert json.loads((tmp_path / "run" / "compressed" / "model.json").read_text())["architecture"]["name"] == "custom"


def test_doctor_on_arrays_and_a_user_module(digits_images, tmp_path):
    X, y = digits_images
    net = FlatMLP()
    before = net.net[1].weight.detach().clone()
    report = nnrecipe.doctor((X, y), model=net, out=tmp_path / "doc", overrides=["train.batch_size=128"])
    assert report["data"] == "arrays" and abs(report["initial_loss"]["expected"] - np.log(10)) < 1e-6
    assert report["lr_find"]["suggested_lr"] > 0 and len(report["search"]["trials"]) >= 3
    assert torch.equal(net.net[1].weight, before)  # every step trains a copy of the user's module
    assert (tmp_path / "doc" / "best.yaml").read_text().count("class_path: usermodels:FlatMLP") == 1
