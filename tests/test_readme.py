"""The README documents every config key (its Configuration table is the generated reference),
every CLI command, and shows the two quickstart commands."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from nnrecipe.cli import COMMANDS
from nnrecipe.config import Config
from nnrecipe.config.reference import REGENERATE, reference_block, reference_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _keys(ann, f"{prefix}{name}.")
        else:
            yield prefix + name


def test_every_config_key_is_documented():
    missing = [k for k in _keys(Config) if f"`{k}`" not in README]
    assert missing == []


def test_the_configuration_table_is_the_generated_reference():
    # a key added, removed or re-described in config/sections.py without regenerating fails here
    assert reference_block(README, where="README.md") == reference_table(), f"run `{REGENERATE}`"
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert REGENERATE in section


def test_the_configuration_intro_names_every_section():
    intro = README.split("## Configuration", 1)[1].split("```", 1)[0]
    assert [name for name in Config.model_fields if f"`{name}`" not in intro] == []


def test_every_command_is_documented():
    assert [c for c in COMMANDS if f"nnrecipe {c}" not in README] == []


def test_ci_runs_the_readme_test_command():
    quick = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick)
    assert len(commands) == 2
    assert "nnrecipe fit" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci
