"""`nnrecipe fit --resume` on sequence runs: seq2seq with scheduled sampling (global RNG) and dropout,
and a recurrent classifier, resumed mid-epoch and at an epoch end, end bit for bit as the run that
was not interrupted (the data is regenerated from the seed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnrecipe.cli import main
from nnrecipe.driver import fit, resume
from nnrecipe.training.checkpoint import list_checkpoints, load_checkpoint
from testutil import TINY_SEQ, assert_same_run, rewind, set_args

SEQ2SEQ = [*TINY_SEQ, "train.epochs=2", "model.dropout=0.2", "text.teacher_forcing=0.7",
           "train.checkpoint_every_steps=4", "train.keep_checkpoints=100"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seqresume") / "ref"
    fit("seq:reverse", overrides=SEQ2SEQ, out=out)
    return out


def test_seq2seq_resumes_exactly_mid_epoch_and_at_epoch_end(reference, tmp_path):
    seqs = list_checkpoints(reference / "checkpoints")
    ends = [s for s in seqs if load_checkpoint(reference / "checkpoints" / f"ckpt-{s:06d}.json")
            ["progress"]["batches_done"] == 0]
    assert len(ends) == 2 and len(seqs) > 4  # two epoch ends among the step checkpoints
    mid = next(s for s in seqs if s not in ends and s > ends[0])  # inside epoch 2
    for seq in (ends[0], mid):
        run = resume(rewind(reference, tmp_path / f"r{seq}", seq))
        assert not (run.dir / "INCOMPLETE").exists()
        assert_same_run(reference, run.dir, files=("model.json",))


def test_recurrent_classifier_resumes_from_the_cli(tmp_path, capsys):
    common = ["fit", "--data", "seq:memory", "--model", "gru", "--epochs", "2",
              *set_args([*TINY_SEQ, "train.checkpoint_every_steps=3"])]
    assert main([*common, "--out", str(tmp_path / "ref"), "--quiet"]) == 0
    rewound = rewind(tmp_path / "ref", tmp_path / "run", 2)
    assert main(["fit", "--resume", str(rewound), "--quiet"]) == 0
    assert_same_run(tmp_path / "ref", rewound, files=("model.json",))
    metrics = json.loads((rewound / "metrics.json").read_text())
    assert "input_grad_norms" in metrics and metrics["test"]["accuracy"] >= 0
