"""What the library logs while it runs reaches a CLI user's stderr as plain lines, like before the
library stopped writing to the console: health warnings and word2vec epoch lines with progress
(not with --quiet), the torch.compile fallback always; `main` leaves the logging setup as it found it."""

from __future__ import annotations

import logging
import re

import torch

from nnrecipe.cli import main
from testutil import set_args

DEEP_SIGMOID = ["model.activation=sigmoid", "init.name=normal", "model.hidden=[64,64,64,64,64,64]",
                "train.log_every=5"]


def _nnrecipe_logger_state():
    logger = logging.getLogger("nnrecipe")
    return list(logger.handlers), logger.level, logger.propagate


def test_health_warnings_on_stderr_with_progress_only(tmp_path, capsys):
    before = _nnrecipe_logger_state()
    assert main(["fit", "--out", str(tmp_path / "a"), "--epochs", "1", *set_args(DEEP_SIGMOID)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("warning: vanishing gradient at step 5 in layer body.") for line in err)
    assert "(grad norm " in err[0] and err[0].endswith("normalization or residual connections)")
    assert _nnrecipe_logger_state() == before  # the handler is gone after the command
    assert main(["fit", "--out", str(tmp_path / "q"), "--epochs", "1", "--quiet", *set_args(DEEP_SIGMOID)]) == 0
    assert capsys.readouterr().err == ""


def test_word2vec_epoch_lines_on_stderr(tmp_path, capsys):
    argv = ["fit", "--data", "w2v:synthetic", "--model", "word2vec", "--epochs", "2"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    for e, line in enumerate(err, 1):
        assert re.fullmatch(rf"epoch {e}/2  loss \d+\.\d{{4}}  lr \d\.\d\de[-+]\d\d  [\d,]+ words/s", line), line
    assert main([*argv, "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_compile_fallback_warning_on_stderr_even_with_quiet(tmp_path, capsys, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", no_compiler)
    assert main(["fit", "--out", str(tmp_path / "r"), "--epochs", "1", "--compile", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "warning: torch.compile is not usable here, training eagerly (RuntimeError: no compiler here)\n"
    assert captured.out.strip() == str(tmp_path / "r")
