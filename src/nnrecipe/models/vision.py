"""Vision model builders (cnn, resnet, mobilenetv2), registered by name.

Each builder takes the ``architecture`` spec dict: required keys in_channels, image_size [H, W]
and out_features; optional activation ("relu"; mobilenetv2 always uses ReLU6), negative_slope
(0.01), norm ("batch"), dropout (0.0) and the model's own keys with these defaults:
cnn channels [32, 64], convs_per_stage 2; resnet widths [32, 64, 128], blocks [2, 2, 2];
mobilenetv2 width_mult 1.0, last_channels 256.
"""

from __future__ import annotations

from torch import nn

from nnrecipe.models.cnn import CNN
from nnrecipe.models.mobilenetv2 import MobileNetV2
from nnrecipe.models.resnet import ResNet


def _image_size(spec: dict) -> tuple[int, int]:
    size = spec["image_size"]
    if isinstance(size, int):
        return size, size
    if len(size) != 2:
        raise ValueError(f"image_size must be [H, W], got {size}")
    return int(size[0]), int(size[1])


def _common(spec: dict) -> dict:
    return {"in_channels": spec["in_channels"], "image_size": _image_size(spec),
            "out_features": spec["out_features"], "norm": spec.get("norm", "batch"),
            "dropout": spec.get("dropout", 0.0)}


def _activation(spec: dict) -> dict:
    return {"activation": spec.get("activation", "relu"), "negative_slope": spec.get("negative_slope", 0.01)}


def _build_cnn(spec: dict) -> nn.Module:
    return CNN(channels=tuple(spec.get("channels", (32, 64))), convs_per_stage=spec.get("convs_per_stage", 2),
               **_common(spec), **_activation(spec))


def _build_resnet(spec: dict) -> nn.Module:
    return ResNet(widths=tuple(spec.get("widths", (32, 64, 128))), blocks=tuple(spec.get("blocks", (2, 2, 2))),
                  **_common(spec), **_activation(spec))


def _build_mobilenetv2(spec: dict) -> nn.Module:
    return MobileNetV2(width_mult=spec.get("width_mult", 1.0), last_channels=spec.get("last_channels", 256),
                       **_common(spec))


BUILDERS: dict = {"cnn": _build_cnn, "resnet": _build_resnet, "mobilenetv2": _build_mobilenetv2}
