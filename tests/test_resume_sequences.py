"""`nnrecipe fit --resume` on a sequence run from the CLI: a recurrent classifier ends bit for bit as
the run that was not interrupted (the data is regenerated from the seed). Every task's resume
through the API, seq2seq with scheduled sampling among them, is in tests/test_resume_every_task.py."""

from __future__ import annotations

import json


from nnrecipe.cli import main
from testutil import TINY_SEQ, assert_same_run, rewind, set_args

def test_recurrent_classifier_resumes_from_the_cli(tmp_path, capsys):
    common = ["fit", "--data", "seq:memory", "--model", "gru", "--epochs", "2",
              *set_args([*TINY_SEQ, "train.checkpoint_every_steps=3"])]
    assert main([*common, "--out", str(tmp_path / "ref"), "--quiet"]) == 0
    rewound = rewind(tmp_path / "ref", tmp_path / "run", 2)
    assert main(["fit", "--resume", str(rewound), "--quiet"]) == 0
    assert_same_run(tmp_path / "ref", rewound, files=("model.json",))
    metrics, ref = (json.loads((d / "metrics.json").read_text()) for d in (rewound, tmp_path / "ref"))
    assert metrics["input_grad_norms"] and metrics["input_grad_norms"] == ref["input_grad_norms"]
    assert 0 < metrics["test"]["accuracy"] <= 1 and metrics["test"] == ref["test"]
