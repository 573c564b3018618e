"""`nnrecipe summary`: the per-layer table of the model `fit` would build, or of a trained run.

The input shape comes from the data (loaded and preprocessed exactly as `fit` does, so patch ZCA's
extra channels are counted), from an explicit ``input_shape``, or from a run directory.
"""

from __future__ import annotations

import math
from pathlib import Path

from nnrecipe.config import IMAGE_MODELS, flag_overrides, resolve_config
from nnrecipe.errors import UserError
from nnrecipe.models import build_model
from nnrecipe.models.summary import summarize
from nnrecipe.prepare import prepare_for
from nnrecipe.tasks import open_run
from nnrecipe.training.setup import architecture


def describe_model(data: str | None = None, *, run_dir: str | Path | None = None, config=None,
                   overrides: list[str] | None = None, input_shape: tuple[int, ...] | None = None,
                   classes: int | None = None) -> dict:
    """`nnrecipe.models.summary.summarize` of the model, plus ``model`` and ``input_shape``."""
    if run_dir is not None:
        run = open_run(run_dir, "summary")
        if run.model is None:
            raise UserError("an ensemble has one model per member", str(run_dir), f"summarize {run_dir}/members/0")
        shape = run.transform.input_shape
        result = summarize(run.model, (1, *shape))
        return {**result, "model": run.info["architecture"]["name"], "input_shape": list(shape)}
    cfg = resolve_config(file=config, overrides=overrides, extra=flag_overrides(data=data))
    if input_shape is None:
        prepared = prepare_for(cfg)
        input_shape = prepared.input_shape
        classes = classes or (len(prepared.class_names) if prepared.class_names else 1)
    if cfg.model.name in IMAGE_MODELS and len(input_shape) != 3:
        raise UserError(f"model '{cfg.model.name}' takes images", "--input-shape", "give C,H,W, e.g. 1,8,8")
    if cfg.model.name not in IMAGE_MODELS and len(input_shape) != 1:
        input_shape = (math.prod(input_shape),)  # an MLP sees flattened images
    model = build_model(architecture(cfg, input_shape=tuple(input_shape), out_features=classes or 10))
    result = summarize(model, (1, *input_shape))
    return {**result, "model": cfg.model.name, "input_shape": list(input_shape)}
