"""Bad input: one line `error: ...` on stderr, exit code 2, no traceback, no run directory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from testutil import set_args, write_csv
from nnrecipe.cli import main


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _assert_clean_error(code, err, *needles, out_dir=None):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    if out_dir is not None:
        assert not out_dir.exists()
        leftovers = [p for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}")]
        assert leftovers == []


@pytest.mark.parametrize("argv,needles", [
    (["--data", "nosuch.csv"], ["nosuch.csv"]),
    (["--data", "digts"], ["digits"]),
    (["--set", "optimzer.lr=0.1"], ["optimizer"]),
    (["--set", "optimizer.lr=0"], ["optimizer.lr"]),
    (["--set", "optimizer.lr=-1"], ["optimizer.lr"]),
    (["--set", "train.batch_size=0"], ["train.batch_size"]),
    (["--set", "model.dropout=1.0"], ["model.dropout"]),
    (["--set", "model.dropout=-0.1"], ["model.dropout"]),
    (["--epochs", "0"], ["train.epochs"]),
    (["--set", "nokey"], ["nokey"]),
])
def test_config_and_source_errors(tmp_path, capsys, argv, needles):
    out = tmp_path / "run"
    code, err = _run(["fit", *argv, "--out", str(out), "--quiet"], capsys)
    _assert_clean_error(code, err, *needles, out_dir=out)


def test_csv_errors(tmp_path, capsys):
    out = tmp_path / "run"
    bad_col = write_csv(tmp_path / "strings.csv", ["a", "colour", "y"],
                        [[1.0, "red", 0], [2.0, "blue", 1]] * 20)
    code, err = _run(["fit", "--data", str(bad_col), "--out", str(out)], capsys)
    _assert_clean_error(code, err, "colour", out_dir=out)

    nan = write_csv(tmp_path / "nan.csv", ["a", "b", "y"], [[1.0, "nan", 0], [2.0, 3.0, 1]] * 20)
    code, err = _run(["fit", "--data", str(nan), "--out", str(out)], capsys)
    _assert_clean_error(code, err, "'b'", out_dir=out)

    one = write_csv(tmp_path / "one.csv", ["a", "y"], [[float(i), "x"] for i in range(30)])
    code, err = _run(["fit", "--data", str(one), "--out", str(out)], capsys)
    _assert_clean_error(code, err, "class", out_dir=out)

    tiny = write_csv(tmp_path / "tiny.csv", ["a", "y"], [[1.0, 0], [2.0, 1], [3.0, 0]])
    code, err = _run(["fit", "--data", str(tiny), "--out", str(out)], capsys)
    _assert_clean_error(code, err, out_dir=out)


def test_unknown_target_lists_columns(blobs_csv, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _run(["fit", "--data", str(blobs_csv), "--target", "animl", "--out", str(out)], capsys)
    _assert_clean_error(code, err, "animal", out_dir=out)


def test_predict_column_mismatch(blobs_csv, tmp_path, capsys, fast):
    out = tmp_path / "run"
    assert main(["fit", "--data", str(blobs_csv), "--out", str(out), "--quiet", *set_args(fast)]) == 0
    other = write_csv(tmp_path / "other.csv", ["a", "x"], [[1.0, 2.0]])
    code, err = _run(["predict", str(out), "--data", str(other)], capsys)
    _assert_clean_error(code, err, "b", "c")


def test_missing_run_dir(tmp_path, capsys):
    code, err = _run(["predict", str(tmp_path / "nope"), "--data", "x.csv"], capsys)
    _assert_clean_error(code, err, "nope")


def test_bad_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--epochs", "many"])
    assert exc.value.code == 2
    _assert_clean_error(2, capsys.readouterr().err, "--epochs")


def test_subprocess_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nnrecipe", "fit", "--data", str(tmp_path / "x.csv")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()
