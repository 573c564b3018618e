"""The resolved configuration of a run: one frozen pydantic model per stage
(`sections`), the defaults that depend on the model or data (`defaults`, using `kinds`).

`key=value` overrides (``--set optimizer.lr=3e-4``) are parsed with YAML scalar rules and
validated against these models; an unknown key fails with the closest valid name. The fully
resolved configuration is written to ``config.yaml`` in the run directory, and
``nnrecipe fit --config config.yaml`` reproduces the run.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from nnrecipe.config.defaults import (MODEL_DEFAULTS, SEQUENCE_EPOCHS, TAGGING_DEFAULTS, TASK_DEFAULTS,
                                      merge, with_model_defaults)
from nnrecipe.config.kinds import (IMAGE_MODELS, SEQUENCE_MODELS, augments_text, is_caption_run, is_sequence_run,
                                   is_tagging_run, is_text_corpus, schedule_name)
from nnrecipe.config.sections import (DataConfig, ModelConfig, InitConfig, OptimizerConfig, WarmupConfig,
                                      ScheduleConfig, ClipConfig, RegularizationConfig, TrainConfig, AugmentConfig,
                                      TextAugmentConfig, TransferConfig, PeftConfig, AdversarialConfig,
                                      CalibrationConfig, TextConfig, TaggingConfig, Word2VecConfig, GenerativeConfig,
                                      CaptionConfig, Config)
from nnrecipe.errors import UserError


def _closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"did you mean '{match[0]}'?" if match else f"valid keys: {', '.join(sorted(options))}"


def _check_keys(tree: dict, model: type[BaseModel], where: str, prefix: str = "") -> None:
    """Reject unknown keys with the closest valid one (pydantic's message lacks the suggestion)."""
    for key, value in tree.items():
        fields = model.model_fields
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise UserError(f"unknown config key '{dotted}'", where, _closest(key, list(fields)))
        sub = fields[key].annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            _check_keys(value, sub, where, dotted + ".")


def parse_overrides(pairs: list[str]) -> dict:
    """``["optimizer.lr=3e-4", "model.hidden=[128,64]"]`` -> nested dict, values parsed as YAML."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"malformed override '{pair}'", "--set", "write it as key=value, e.g. optimizer.lr=3e-4")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override '{pair}' sets inside a scalar", "--set", "check the key path")
        node[parts[-1]] = value
    return tree


def build_config(tree: dict | None = None, *, where: str = "config") -> Config:
    """Validate a nested dict into a `Config`, turning pydantic errors into one-line `UserError`s."""
    tree = tree or {}
    if not isinstance(tree, dict):
        raise UserError("configuration is not a mapping", where, "write it as YAML sections: train: {epochs: 50}")
    _check_keys(tree, Config, where)
    try:
        return with_model_defaults(tree, Config.model_validate(tree))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise UserError(f"invalid value for '{key}': {err['msg']}", where, "see README 'Configuration'") from None


def load_config_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}", "--config", "check the path") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read config file {path}: {type(exc).__name__}", "--config", "pass a YAML file") from None
    return tree or {}


def resolve_config(*, file: "str | Path | dict | Config | None" = None, overrides: list[str] | None = None,
                   extra: dict | None = None) -> Config:
    """Base (a YAML path, a nested dict or a Config), then `extra` (from flags such as --epochs),
    then ``key=value`` overrides; later wins."""
    if isinstance(file, Config):
        file = config_to_dict(file)
    if isinstance(file, dict):
        return build_config(merge(merge(file, extra or {}), parse_overrides(overrides or [])))
    tree = load_config_file(file) if file else {}
    tree = merge(tree, extra or {})
    tree = merge(tree, parse_overrides(overrides or []))
    return build_config(tree, where=str(file) if file and not overrides else "config")


def flag_overrides(**flags) -> dict:
    """CLI/API flags as a config tree: data/target/task/test_data → data.*, epochs/seed → train.*,
    model → model.name, model_class/model_kwargs → model.class_path/kwargs (and name custom),
    init_from → transfer.init_from (None means "not given")."""
    sections = {"data": {"data": "source", "target": "target", "task": "task", "test_data": "test_data",
                         "standardize": "standardize"},
                "train": {"epochs": "epochs", "seed": "seed"},
                "model": {"model": "name", "model_class": "class_path", "model_kwargs": "kwargs"},
                "transfer": {"init_from": "init_from"}}
    tree: dict = {}
    for section, names in sections.items():
        for flag, key in names.items():
            if flags.get(flag) is not None:
                tree.setdefault(section, {})[key] = flags[flag]
    if flags.get("model_class") is not None:  # a user's class: model.name custom
        tree["model"]["name"] = "custom"
    return tree


def config_to_dict(cfg: Config) -> dict:
    return cfg.model_dump(mode="json")


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


__all__ = ["AdversarialConfig", "AugmentConfig", "CalibrationConfig", "CaptionConfig", "ClipConfig", "Config",
           "DataConfig", "TextAugmentConfig", "augments_text",
           "GenerativeConfig", "IMAGE_MODELS", "InitConfig", "MODEL_DEFAULTS", "ModelConfig", "OptimizerConfig",
           "PeftConfig", "RegularizationConfig", "SEQUENCE_EPOCHS", "SEQUENCE_MODELS", "ScheduleConfig",
           "TAGGING_DEFAULTS", "TASK_DEFAULTS", "TaggingConfig", "TextConfig", "TrainConfig", "TransferConfig",
           "WarmupConfig", "Word2VecConfig", "build_config", "config_to_dict", "flag_overrides", "is_caption_run", "is_sequence_run",
           "is_tagging_run", "is_text_corpus", "load_config_file", "merge", "parse_overrides", "resolve_config",
           "save_config", "schedule_name"]
