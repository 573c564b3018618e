"""The task registry: a config (for `fit`) or a run's model.json (for the commands that use a
trained run) → the task that knows its family, the way `nnrecipe.models` maps architecture names
to builders. `nnrecipe.tasks.base` states the contract.

    task_for_config(cfg)  token tags (`nnrecipe.config.is_tagging_run`) → tagging, autoencoder | vae →
                          autoencoder, gan → gan, word2vec → word2vec, captioner or a ``cap:`` source →
                          captioning, a sequence model or a ``seq:`` source → sequence, the user's module
                          → custom, else tabular
    task_for_info(info)   the same families from what a run wrote (model.json's "task", "sequence",
                          "architecture")
    load(run_dir)         `nnrecipe.load`: the run back through its task
    open_run(run_dir, command)   the same, refusing a command the task does not answer (one place,
                          one message: what the run holds and what to run instead)
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from nnrecipe.config import Config, is_caption_run, is_sequence_run, is_tagging_run
from nnrecipe.errors import UserError
from nnrecipe.run import Run, read_run_info
from nnrecipe.tasks.autoencoder import AutoencoderTask
from nnrecipe.tasks.base import Task
from nnrecipe.tasks.captioning import CaptioningTask
from nnrecipe.tasks.gan import GanTask
from nnrecipe.tasks.sequence import SequenceTask
from nnrecipe.tasks.tabular import CustomTask, TabularTask
from nnrecipe.tasks.tagging import TaggingTask
from nnrecipe.tasks.word2vec import Word2VecTask

TASKS: dict[str, Task] = {task.name: task for task in (TabularTask(), CustomTask(), SequenceTask(),
                                                       AutoencoderTask(), GanTask(), Word2VecTask(),
                                                       TaggingTask(), CaptioningTask())}
BY_MODEL = {"autoencoder": "autoencoder", "vae": "autoencoder", "gan": "gan", "word2vec": "word2vec",
            "custom": "custom", "captioner": "captioning"}


def task_name(cfg: Config) -> str:
    if is_tagging_run(cfg):  # before the model: `--task tagging --model gan` is refused by the tagger
        return "tagging"
    if cfg.model.name in BY_MODEL:
        return BY_MODEL[cfg.model.name]
    if is_caption_run(cfg):  # a cap: task with another model: the captioning task refuses it by name
        return "captioning"
    return "sequence" if is_sequence_run(cfg) else "tabular"


def task_for_config(cfg: Config) -> Task:
    return TASKS[task_name(cfg)]


def task_name_of_run(info: dict) -> str:
    """The family of a finished run from its model.json."""
    if info.get("task") == "tagging":
        return "tagging"
    if info.get("task") == "embedding":
        return "word2vec"
    if info.get("task") == "captioning":
        return "captioning"
    architecture = info.get("architecture") or {}
    if info.get("task") == "generative":
        return "gan" if architecture.get("name") == "gan" else "autoencoder"
    if "sequence" in info:
        return "sequence"
    return "custom" if architecture.get("name") == "custom" else "tabular"


def task_for_info(info: dict) -> Task:
    return TASKS[task_name_of_run(info)]


def load(run_dir: str | Path, *, model: nn.Module | None = None) -> Run:
    """A trained run (weights + model.json + metrics + config) back from its directory.

    A run of the user's own module (``model.name: custom``) rebuilds its class from model.json
    when it is importable; otherwise pass an instance as `model` and the weights load into it."""
    info = read_run_info(run_dir)
    return task_for_info(info).load(Path(run_dir), info, model=model)


def check_command(run_dir: str | Path, info: dict, command: str) -> None:
    task = task_for_info(info)
    if command not in task.commands:
        raise UserError(f"{run_dir} holds a {task.holds}; `nnrecipe {command}` does not apply to it", "RUN_DIR",
                        task.instead.replace("RUN_DIR", str(run_dir)))


def open_run(run_dir: str | Path, command: str, *, model: nn.Module | None = None) -> Run:
    """`load`, after checking that the run's task answers `command` (a `UserError` otherwise)."""
    info = read_run_info(run_dir)
    check_command(run_dir, info, command)
    return task_for_info(info).load(Path(run_dir), info, model=model)


__all__ = ["TASKS", "check_command", "load", "open_run", "Task", "task_for_config", "task_for_info", "task_name", "task_name_of_run"]
