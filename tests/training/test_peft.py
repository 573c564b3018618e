"""LoRA, adapters and prompt tuning on small models (no training runs; see tests/test_peft_cli.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import PeftConfig
from nnrecipe.errors import UserError
from nnrecipe.models import MLP, build_model
from nnrecipe.models.transformer import TransformerClassifier
from nnrecipe.models.vit import ViT
from nnrecipe.training.optim import param_groups
from nnrecipe.training.peft import (Adapter, LoRA, PromptTuning, apply_peft, find_targets, merge_lora,
                                    parameter_counts, unmerge_lora)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return MLP(64, 10, hidden=(32, 16)).eval()


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_model({"name": "cnn", "in_channels": 1, "image_size": [8, 8], "out_features": 10,
                        "channels": [4, 8], "convs_per_stage": 1, "activation": "relu", "dropout": 0.0,
                        "norm": "batch"}).eval()


def _randomize_b(model: nn.Module) -> None:
    """Give every LoRA a nonzero B (as after training), so the update is not trivially 0."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, LoRA):
            m.lora_B.data = torch.randn(m.lora_B.shape, generator=g) * 0.1


@pytest.mark.parametrize("make, x", [(_mlp, torch.randn(5, 64)), (_cnn, torch.randn(5, 1, 8, 8))])
def test_lora_starts_exactly_at_the_base_model(make, x):
    base = make()
    ref = base(x)
    model, names = apply_peft(copy.deepcopy(base), PeftConfig(method="lora", rank=4))
    assert names and all(isinstance(model.get_submodule(n), LoRA) for n in names)
    assert torch.equal(model(x), ref)  # B = 0: bit-identical, not just close


def test_lora_initialization_follows_the_paper_and_peft():
    model, _ = apply_peft(_mlp(), PeftConfig(method="lora", rank=4))
    lora = model.body[0]
    bound = 1 / math.sqrt(64)  # kaiming_uniform(a=√5): gain √(1/3) · √(3/fan_in) = 1/√fan_in
    assert lora.lora_A.shape == (4, 64) and lora.lora_B.shape == (32, 4)
    assert lora.lora_A.abs().max() <= bound and lora.lora_A.abs().max() > 0.5 * bound
    assert torch.count_nonzero(lora.lora_B) == 0


def test_only_lora_factors_and_a_new_head_train():
    model, names = apply_peft(_mlp(), PeftConfig(method="lora", rank=4))
    assert names == ["body.0", "body.2"]  # every Linear but the head
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"body.0.lora_A", "body.0.lora_B", "body.2.lora_A", "body.2.lora_B"}
    model, _ = apply_peft(_mlp(), PeftConfig(method="lora", rank=4), train_head=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"head.weight", "head.bias"} <= trainable and "body.0.base.weight" not in trainable


def test_lora_forward_is_the_low_rank_update_of_the_weight():
    torch.manual_seed(0)
    for base, x, op in ((nn.Linear(6, 5), torch.randn(3, 6), F.linear),
                        (nn.Conv2d(3, 4, 3, padding=1, stride=2), torch.randn(2, 3, 7, 7),
                         lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1))):
        lora = LoRA(base, rank=2, alpha=6.0)
        lora.lora_B.data = torch.randn(lora.lora_B.shape)
        A, B = lora.lora_A.detach(), lora.lora_B.detach()
        w = base.weight + (6.0 / 2) * (B @ A).view_as(base.weight)  # W + (α/r)·B·A, by hand
        torch.testing.assert_close(lora(x), op(x, w, base.bias), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make, x", [(_mlp, torch.randn(7, 64)), (_cnn, torch.randn(7, 1, 8, 8))])
def test_merge_and_unmerge_are_exact(make, x):
    model, names = apply_peft(make(), PeftConfig(method="lora", rank=4, alpha=8.0))
    _randomize_b(model)
    weights = {n: model.get_submodule(n).base.weight.detach().clone() for n in names}
    unmerged = model(x)
    assert not torch.allclose(unmerged, make()(x), atol=1e-4)  # the update does something
    merge_lora(model)
    assert all(model.get_submodule(n).merged for n in names)
    torch.testing.assert_close(model(x), unmerged, atol=1e-6, rtol=0)
    unmerge_lora(model)
    for n in names:
        torch.testing.assert_close(model.get_submodule(n).base.weight, weights[n], atol=1e-6, rtol=0)
    torch.testing.assert_close(model(x), unmerged, atol=1e-6, rtol=0)


def test_parameter_report_matches_a_hand_count():
    base_total = (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    model, _ = apply_peft(_mlp(), PeftConfig(method="lora", rank=4))
    lora = 4 * (64 + 32) + 4 * (32 + 16)  # r·(k + d) per wrapped layer
    counts = parameter_counts(model)
    assert counts["trainable"] == lora and counts["total"] == base_total + lora
    assert counts["trainable_percent"] == pytest.approx(100 * lora / (base_total + lora))
    model, _ = apply_peft(_mlp(), PeftConfig(method="adapter", adapter_hidden=3), train_head=True)
    adapters = (32 * 3 + 3 + 3 * 32 + 32) + (16 * 3 + 3 + 3 * 16 + 16)  # down d·m + m, up m·d + d
    assert parameter_counts(model)["trainable"] == adapters + 16 * 10 + 10


@pytest.mark.parametrize("make, x", [(_mlp, torch.randn(5, 64)), (_cnn, torch.randn(5, 1, 8, 8))])
def test_adapters_start_as_the_identity(make, x):
    base = make()
    ref = base(x)
    targets = () if make is _mlp else ("features.stage1.0.conv",)  # adapters wrap Linears by default
    model, names = apply_peft(copy.deepcopy(base), PeftConfig(method="adapter", adapter_hidden=4, targets=targets))
    assert names and all(isinstance(model.get_submodule(n), Adapter) for n in names)
    assert torch.equal(model(x), ref)
    assert {n.rsplit(".", 2)[-2] for n, p in model.named_parameters() if p.requires_grad} == {"down", "up"}


def test_targets_by_substring_and_glob_and_errors():
    model = _cnn()
    assert find_targets(model, "lora") == ["features.stage1.0.conv", "features.stage2.0.conv"]
    assert find_targets(model, "lora", ("stage2",)) == ["features.stage2.0.conv"]
    assert find_targets(model, "lora", ("*stage1*", "head")) == ["features.stage1.0.conv", "head"]
    with pytest.raises(UserError, match="no Linear/Conv2d layer matches 'nothing'"):
        find_targets(model, "lora", ("nothing",))
    with pytest.raises(UserError, match="no layers adapter wraps"):
        find_targets(model, "adapter")
    dw = build_model({"name": "mobilenetv2", "in_channels": 1, "image_size": [8, 8], "out_features": 3,
                      "width_mult": 0.25, "last_channels": 16, "activation": "relu6", "dropout": 0.0, "norm": "batch"})
    names = find_targets(dw, "lora")
    assert names and all(dw.get_submodule(n).groups == 1 for n in names)  # depthwise convs are skipped
    depthwise = next(n for n, m in dw.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
    with pytest.raises(UserError, match="grouped"):
        find_targets(dw, "lora", (depthwise,))


def test_optimizer_groups_hold_the_trainable_tensors_and_decay_the_matrices():
    model, _ = apply_peft(_mlp(), PeftConfig(method="adapter", adapter_hidden=3))
    decay, no_decay = (g["params"] for g in param_groups(model, weight_decay=0.1))
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decay} == {"body.0.down.weight", "body.0.up.weight", "body.2.down.weight",
                                             "body.2.up.weight"}
    assert {names[id(p)] for p in no_decay} == {"body.0.down.bias", "body.0.up.bias", "body.2.down.bias",
                                                "body.2.up.bias"}


def _train_steps(model: nn.Module, x, y, steps: int = 5) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def _prompt_models():
    torch.manual_seed(0)
    return [TransformerClassifier(out_features=3, vocab_size=20, dim=16, heads=2, depth=2, pool="mean"),
            TransformerClassifier(out_features=3, vocab_size=20, dim=16, heads=2, depth=2, pool="cls"),
            ViT(in_channels=1, image_size=8, out_features=3, patch_size=2, dim=16, depth=2, heads=2)]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_prompt_tuning_trains_only_the_prompt(index):
    base = _prompt_models()[index].eval()
    frozen = copy.deepcopy(base.state_dict())
    x = torch.randn(8, 1, 8, 8) if isinstance(base, ViT) else torch.randint(1, 20, (8, 6))
    model, _ = apply_peft(base, PeftConfig(method="prompt", prompt_tokens=4))
    assert isinstance(model, PromptTuning)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["prompt"]
    before = model.prompt.detach().clone()
    _train_steps(model, x, torch.randint(0, 3, (8,)))
    assert not torch.equal(model.prompt, before)
    assert all(torch.equal(v, frozen[k]) for k, v in model.model.state_dict().items())


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_prompts_never_reach_the_pool_directly_and_padding_stays_masked(pool):
    torch.manual_seed(0)
    # No blocks: nothing mixes tokens, so the prompted model must equal the base model exactly when
    # the mean pool skips the prompts (and the CLS pool reads the CLS token, not a prompt).
    shallow = TransformerClassifier(out_features=3, vocab_size=20, dim=16, heads=2, depth=0, pool=pool).eval()
    x = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    ref = shallow(x)
    model, _ = apply_peft(shallow, PeftConfig(method="prompt", prompt_tokens=3))
    torch.testing.assert_close(model(x), ref, atol=1e-6, rtol=0)
    # With blocks, trailing pads are masked: the same sequence without them gives the same output.
    deep = TransformerClassifier(out_features=3, vocab_size=20, dim=16, heads=2, depth=2, pool=pool).eval()
    model, _ = apply_peft(deep, PeftConfig(method="prompt", prompt_tokens=3))
    torch.testing.assert_close(model(x[:1]), model(x[:1, :3]), atol=1e-5, rtol=0)


def test_prompt_tuning_refuses_other_models():
    with pytest.raises(UserError, match="prompt tuning needs a transformer"):
        apply_peft(_mlp(), PeftConfig(method="prompt"))


def test_targets_from_a_comma_separated_string():
    assert PeftConfig(targets="body.0, *stage1*").targets == ("body.0", "*stage1*")
