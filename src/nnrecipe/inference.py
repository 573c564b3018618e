"""Use a trained run on new data: `predict` (rows → classes/probabilities) and `evaluate`, through
the run's task (`nnrecipe.tasks`: tabular and image runs read rows or images, sequence runs text)."""

from __future__ import annotations

import json
from pathlib import Path

from nnrecipe.run import Run
from nnrecipe.tasks import check_command, task_for_info


def predict(run: Run, source: str, *, out: str | Path | None = None) -> str:
    """Predict every row (or image, or text) of `source`; write CSV to `out` (or return it as text).

    Image sources get a leading ``file`` column (paths relative to the folder); sequence runs write
    ``input,prediction[,prob_…]`` (`nnrecipe.sequence_inference`)."""
    check_command(run.dir, run.info, "predict")
    text = task_for_info(run.info).predict(run, source)
    if out:
        Path(out).write_text(text)
    return text


def evaluate(run: Run, source: str, *, out: str | Path | None = None) -> dict:
    """Metrics (the `test` block's keys) of `run` on labelled data `source`."""
    check_command(run.dir, run.info, "evaluate")
    result = task_for_info(run.info).evaluate_source(run, source)
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    return result
