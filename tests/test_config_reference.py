"""The configuration reference generated from the pydantic sections (`nnrecipe.config.reference`)
and `nnrecipe config` (the resolved configuration, the reference, the README rewrite)."""

from __future__ import annotations

import re
from typing import Literal, get_args

import pytest
import yaml
from pydantic import BaseModel, Field

from nnrecipe.cli import main
from nnrecipe.config import Config, config_to_dict, resolve_config
from nnrecipe.config.reference import END, START, reference_rows, reference_table, replace_reference
from nnrecipe.errors import UserError


class _Inner(BaseModel):
    size: int | None = Field(None, ge=1, description="size |s|")


class _Toy(BaseModel):
    kind: Literal["a", "b"] = Field("a", description="which one")
    rate: float = Field(0.5, gt=0, le=1, description="a rate")
    inner: _Inner = _Inner()
    widths: tuple[int, ...] = Field((3, 4), description="widths")


def _rows() -> dict:
    return {r.key: r for r in reference_rows()}


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        nested = isinstance(sub, type) and issubclass(sub, BaseModel)
        keys += _leaf_keys(sub, f"{prefix}{name}.") if nested else [prefix + name]
    return keys


def test_a_small_model_gives_this_exact_table():
    assert reference_table(_Toy) == (
        "| key | default | values | meaning |\n"
        "|---|---|---|---|\n"
        "| `kind` | `a` | a \\| b | which one |\n"
        "| `rate` | `0.5` | float > 0, ≤ 1 | a rate |\n"
        "| `inner.size` | `null` | int ≥ 1 or null | size \\|s\\| |\n"
        "| `widths` | `[3, 4]` | list of int | widths |\n")


def test_every_leaf_key_has_a_row_in_declaration_order_with_a_one_line_meaning():
    rows = reference_rows()
    assert [r.key for r in rows] == _leaf_keys(Config)
    assert [r.key for r in rows if not r.meaning.strip() or "\n" in r.meaning] == []
    sections = {r.key.split(".")[0] for r in rows}
    assert {"peft", "adversarial", "word2vec", "generative", "caption"} <= sections


def test_values_and_defaults_of_known_keys():
    rows = _rows()
    expected = {"data.val_fraction": ("0.1", "float > 0, < 1"), "data.image_size": ("null", "int ≥ 1 or null"),
                "data.channels": ("null", "1 | 3 or null"), "model.hidden": ("[256, 128]", "list of int"),
                "optimizer.betas": ("[0.9, 0.999]", "[float, float]"), "optimizer.eps": ("1e-08", "float > 0"),
                "adversarial.raw_range": ("null", "[float, float] or null"),
                "train.channels_last": ("auto", "auto or bool"), "train.seed": ("0", "int"),
                "peft.targets": ("[]", "list of str"), "model.kwargs": ("{}", "JSON object"),
                "augment.text.min_similarity": ("0.5", "float ≥ -1, ≤ 1"), "data.standardize": ("true", "bool"),
                "schedule.warmup.steps": ("null", "int ≥ 0 or null"), "clip.percentile": ("10.0", "float > 0, ≤ 100")}
    assert {k: (rows[k].default, rows[k].values) for k in expected} == expected


def test_model_name_lists_every_architecture():
    choices = _rows()["model.name"].values.split(" | ")
    assert choices == list(get_args(Config.model_fields["model"].annotation.model_fields["name"].annotation))
    assert {"word2vec", "autoencoder", "vae", "gan", "captioner", "custom"} <= set(choices)


def test_every_table_line_has_four_cells():
    for line in reference_table().splitlines():
        cells = re.split(r"(?<!\\)\|", line)
        assert len(cells) == 6 and cells[0] == cells[-1] == "", line


def test_replace_reference_rewrites_only_the_block():
    text = f"# T\n\nbefore\n{START}\n| stale |\n{END}\nafter\n"
    new = replace_reference(text)
    assert new == f"# T\n\nbefore\n{START}\n{reference_table()}{END}\nafter\n"
    assert replace_reference(new) == new
    with pytest.raises(UserError, match="config-reference"):
        replace_reference("no markers", where="x.md")
    with pytest.raises(UserError, match="x.md"):
        replace_reference(f"{END}\n{START}\n", where="x.md")


def test_cli_prints_the_reference(capsys):
    assert main(["config", "--reference"]) == 0
    assert capsys.readouterr().out == reference_table()


def test_cli_rewrites_the_block_in_a_file(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\n| old |\n{END}\noutro\n")
    assert main(["config", "--reference", str(readme)]) == 0
    assert readme.read_text() == f"intro\n{START}\n{reference_table()}{END}\noutro\n"
    assert capsys.readouterr().out.startswith("wrote ")
    assert main(["config", "--reference", str(readme)]) == 0
    assert capsys.readouterr().out.startswith("up to date:")


@pytest.mark.parametrize("argv,needle", [(["--reference", "{tmp}/none.md"], "none.md"),
                                         (["--reference", "{tmp}/plain.md"], "plain.md"),
                                         (["--reference", "--set", "train.epochs=3"], "--reference"),
                                         (["--set", "train.epochs=0"], "train.epochs")])
def test_cli_bad_input_is_one_line(argv, needle, tmp_path, capsys):
    (tmp_path / "plain.md").write_text("no markers\n")
    code = main(["config"] + [a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and needle in err
    assert (tmp_path / "plain.md").read_text() == "no markers\n"


def test_cli_prints_the_resolved_configuration(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("train: {epochs: 7}\n")
    assert main(["config", "--config", str(tmp_path / "c.yaml"), "--set", "model.name=vit"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == config_to_dict(resolve_config(overrides=["train.epochs=7", "model.name=vit"]))
    assert printed["train"]["epochs"] == 7 and printed["model"]["dropout"] == 0.0  # the vit model default
