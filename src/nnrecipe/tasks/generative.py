"""What the autoencoder/VAE and GAN tasks share: images in [0, 1] (`nnrecipe.generative`), the
architecture spec, one process, the runs answering `nnrecipe sample` only."""

from __future__ import annotations

import torch

from nnrecipe.config import Config
from nnrecipe.generative import (ImageData, build_generative, check_generative, generative_architecture,
                                 load_generative, load_images)
from nnrecipe.prepare import Provided
from nnrecipe.run import Run
from nnrecipe.tasks.base import ONE_PROCESS, Member, Task


class GenerativeTask(Task):
    data_parallel = False
    why_not_parallel = ONE_PROCESS
    commands = frozenset({"sample"})
    holds = "generative model"
    instead = "draw images with `nnrecipe sample RUN_DIR --out grid.png`"

    def check(self, cfg: Config) -> None:
        check_generative(cfg)

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> ImageData:
        return load_images(cfg, device)

    def build(self, cfg: Config, data: ImageData, member: Member):
        return build_generative(generative_architecture(cfg, data.image_shape)).to(member.device)

    def load(self, run_dir, info: dict, *, model=None) -> Run:
        return load_generative(run_dir, info)
