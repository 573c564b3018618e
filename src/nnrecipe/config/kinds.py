"""What kind of run a configuration describes (image model, token sequences, a text corpus, token
tags), from the model name and a glance at the source: the predicates the defaults, the task
registry (`nnrecipe.tasks`) and the schedule share."""

from __future__ import annotations

import csv
from pathlib import Path


IMAGE_MODELS = ("cnn", "resnet", "mobilenetv2", "vit")
SEQUENCE_MODELS = ("rnn", "lstm", "gru", "seq2seq", "transformer")


def schedule_name(cfg) -> str:
    """`schedule.name` with ``auto`` resolved for the model."""
    if cfg.schedule.name != "auto":
        return cfg.schedule.name
    return "inverse_sqrt" if cfg.model.name == "transformer" else "cosine"


def augments_text(cfg) -> bool:
    """EDA is on: some `augment.text` rate > 0, and `augment.enabled` (the switch of all augmentation)."""
    return cfg.augment.enabled and cfg.augment.text.active


def is_text_corpus(source: str) -> bool:
    """A plain-text file (``.txt``) or a folder of them (no subfolders): a language-model corpus."""
    path = Path(source)
    if path.suffix.lower() == ".txt":
        return True
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    return any(p.suffix.lower() == ".txt" for p in entries) and not any(p.is_dir() for p in entries)


def is_caption_run(cfg) -> bool:
    """Captioned images (`nnrecipe.tasks.captioning`): ``model.name: captioner`` or a ``cap:`` task."""
    return cfg.model.name == "captioner" or cfg.data.source.startswith("cap:")


def is_sequence_run(cfg) -> bool:
    """Token inputs: a generated `seq:NAME` task, a text corpus, or a sequence model on a text CSV."""
    return (cfg.data.source.startswith("seq:") or cfg.model.name in SEQUENCE_MODELS
            or (cfg.model.name == "mlp" and is_text_corpus(cfg.data.source)))


def _csv_header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # not readable here: the task that reads it says why


def is_tagging_run(cfg) -> bool:
    """Token tags (`nnrecipe.tasks.tagging`): ``data.task: tagging``, or, when data.task is unset,
    ``seq:tagging``, a ``.conll`` file, or a CSV whose header has both tagging columns."""
    if cfg.data.task is not None:
        return cfg.data.task == "tagging"
    source = cfg.data.source
    if source == "seq:tagging" or source.lower().endswith(".conll"):
        return True
    columns = {cfg.tagging.tokens_column, cfg.tagging.tags_column}
    return source.lower().endswith(".csv") and columns <= set(_csv_header(source))
