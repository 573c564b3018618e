"""Tagging tensors and architectures (`nnrecipe.tagging_data`)."""

from __future__ import annotations

import pytest
import torch

from nnrecipe.config import resolve_config
from nnrecipe.data import PAD, UNK
from nnrecipe.errors import UserError
from nnrecipe.tagging_data import encode, prepare_tagging, tagging_architecture
from nnrecipe.data.tagged_text import Tagged
from testutil import write_csv


def _csv(tmp_path, rows=40):
    sentences = [[f"The Word{i % 7} ran", "O B-X O"] if i % 2 else [f"a b{i % 5}", "O B-Y"] for i in range(rows)]
    return write_csv(tmp_path / "tags.csv", ["tokens", "tags"], sentences)


def test_tensors_align_tokens_and_tags_with_pad_zero(tmp_path):
    cfg = resolve_config(overrides=[f"data.source={_csv(tmp_path)}"])
    data = prepare_tagging(cfg)
    assert data.tags == ["B-X", "B-Y", "O"] and data.scheme == "bio"
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 28, "val": 4, "test": 8}
    for X, y in data.tensors.values():
        assert X.shape == y.shape and torch.equal(X == PAD, y == PAD)
    assert "The" in data.vocab.tokens and "the" not in data.vocab.tokens  # tokens as given: case kept
    X, y = encode(Tagged([["The", "zzz"]], [["O", "B-X"]]), data.vocab, data.tags)
    assert X[0, 1] == UNK and y.tolist() == [[3, 1]]


def test_a_tag_the_run_does_not_know_is_refused(tmp_path):
    data = prepare_tagging(resolve_config(overrides=[f"data.source={_csv(tmp_path)}"]))
    with pytest.raises(UserError, match="B-Z"):
        encode(Tagged([["a"]], [["B-Z"]]), data.vocab, data.tags)


def test_architectures(tmp_path):
    for model, name in (("mlp", "lstm"), ("gru", "gru"), ("transformer", "transformer")):
        cfg = resolve_config(overrides=["data.source=seq:tagging", "text.task_size=20", f"model.name={model}"])
        data = prepare_tagging(cfg)
        arch = tagging_architecture(cfg, data)
        assert arch["name"] == name and arch["out_features"] == len(data.tags) + 1 == 8
        assert arch.get("pool", "none") == "none" and arch.get("pattern", "many_to_many") == "many_to_many"
    assert cfg.model.bidirectional  # the tagging default
    with pytest.raises(UserError, match="does not tag"):
        tagging_architecture(resolve_config(overrides=["data.source=seq:tagging", "model.name=cnn"]), data)
