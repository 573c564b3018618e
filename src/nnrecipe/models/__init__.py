"""Architecture builders, looked up by name so the config and the API share one path.

Each family module exposes a ``BUILDERS`` dict {name: builder(spec) -> nn.Module}; ``MODELS``
merges them. A spec is the ``architecture`` block of model.json.
"""

from __future__ import annotations

from torch import nn

from nnrecipe.models import captioner, custom, sequence, vision
from nnrecipe.models.mlp import ACTIVATIONS, MLP, make_activation
from nnrecipe.models.shapes import conv_output_size
from nnrecipe.models.summary import summarize


def _build_mlp(spec: dict) -> nn.Module:
    return MLP(spec["in_features"], spec["out_features"], hidden=tuple(spec["hidden"]),
               activation=spec["activation"], negative_slope=spec.get("negative_slope", 0.01),
               dropout=spec.get("dropout", 0.0), norm=spec.get("norm", "none"))


MODELS = {"mlp": _build_mlp, **vision.BUILDERS, **sequence.BUILDERS, **captioner.BUILDERS, **custom.BUILDERS}


def build_model(spec: dict) -> nn.Module:
    """Build a model from its architecture spec (the ``architecture`` block of model.json)."""
    try:
        builder = MODELS[spec["name"]]
    except KeyError:
        raise ValueError(f"unknown model '{spec.get('name')}'; choose one of {', '.join(MODELS)}") from None
    return builder(spec)


__all__ = ["ACTIVATIONS", "MLP", "MODELS", "build_model", "conv_output_size", "make_activation", "summarize"]
