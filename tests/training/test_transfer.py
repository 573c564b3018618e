import os
import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nnrecipe.errors import UserError
from nnrecipe.models import MLP
from nnrecipe.training.loop import Trainer, keep_frozen_norms_in_eval
from nnrecipe.training.optim import param_groups
from nnrecipe.training.transfer import (Unfreezer, discriminative_scales, frozen_count, layer_groups,
                                        load_pretrained, transfer_weights)
from nnrecipe.config import OptimizerConfig, ScheduleConfig
from nnrecipe.training.optim import build_optimizer
from nnrecipe.training.schedules import build_schedule


def _mlp(out=3):
    return MLP(6, out, hidden=(8, 8), norm="batch")


def test_layer_groups_cover_every_parameter_once_bottom_to_top():
    model = _mlp()
    groups = layer_groups(model)
    assert [n for n, _ in groups] == ["layer1", "layer2", "head"]
    ids = [id(p) for _, ps in groups for p in ps]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert groups[-1][1][0] is model.head.weight


def test_frozen_count_specs_and_error():
    names = ["stem", "stage1", "stage2", "head"]
    assert frozen_count(None, names) == 0
    assert frozen_count("backbone", names) == 3
    assert frozen_count("up_to=stage1", names) == 2
    with pytest.raises(UserError, match="stem, stage1, stage2"):
        frozen_count("up_to=head", names)


def test_transfer_copies_matching_tensors_and_reports_new_head(tmp_path):
    source, target = _mlp(out=5), _mlp(out=3)
    report = transfer_weights(target, source.state_dict())
    assert torch.equal(target.body[0].weight, source.body[0].weight)
    assert "head.weight" in report["new"] and any(s.startswith("head.weight (shape") for s in report["skipped"])
    same = _mlp(out=5)
    report = transfer_weights(same, source.state_dict(), new_head=True)
    assert not torch.equal(same.head.weight, source.head.weight) and "head.bias" in report["new"]
    with pytest.raises(UserError, match="no pretrained weights match"):
        transfer_weights(nn.Linear(2, 2), {"other.weight": torch.zeros(1)})


def test_load_pretrained_formats(tmp_path):
    state = _mlp().state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    torch.save({"state_dict": state}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        loaded, classes = load_pretrained(tmp_path / name)
        assert classes is None and torch.equal(loaded["head.weight"], state["head.weight"])
    with pytest.raises(UserError, match="not found"):
        load_pretrained(tmp_path / "missing.safetensors")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_crafted_pickle_is_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": _Payload()}))
    with pytest.raises(UserError, match="cannot read pretrained weights"):
        load_pretrained(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_discriminative_scales_and_param_groups():
    model = _mlp()
    groups = layer_groups(model)
    scales = discriminative_scales(groups, 2.0)
    assert scales[id(model.head.weight)] == 1.0
    assert scales[id(model.body[0].weight)] == 0.25  # two groups below the head
    built = param_groups(model, weight_decay=0.1, lr_scales=scales)
    by_param = {id(p): g for g in built for p in g["params"]}
    assert by_param[id(model.body[0].weight)]["lr_scale"] == 0.25
    assert by_param[id(model.body[0].bias)]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in built) == len(list(model.parameters()))


def _trainer(model, callbacks, lr_scales=None):

    opt = build_optimizer(model, OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.0), lr_scales=lr_scales)
    sched = build_schedule(ScheduleConfig(name="constant"), base_lr=0.1, total_steps=100)
    return Trainer(model=model, loss_fn=nn.functional.cross_entropy, optimizer=opt, schedule=sched,
                   classification=True, callbacks=callbacks, clip_mode="none")


def test_frozen_backbone_gets_no_updates_and_bn_stays_in_eval_then_unfreezes():
    torch.manual_seed(0)
    model = _mlp()
    groups = layer_groups(model)
    unfreezer = Unfreezer(groups, 2, unfreeze_at=3, gradual=True)
    X, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _trainer(model, [unfreezer])
    trainer.fit(X, y, X, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0))
    after = model.state_dict()
    for key in ("body.0.weight", "body.1.running_mean", "body.3.weight", "body.4.running_var"):
        assert torch.equal(before[key], after[key]), key  # frozen: no grads, BN statistics untouched
    assert not torch.equal(before["head.weight"], after["head.weight"])
    trainer.fit(X, y, X, y, epochs=4, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert unfreezer.events == ["epoch 3: training from group 'layer2' up", "epoch 4: training from group 'layer1' up"]
    assert not torch.equal(before["body.0.weight"], model.state_dict()["body.0.weight"])


def test_keep_frozen_norms_in_eval_only_touches_frozen_norms():
    model = _mlp().train()
    for p in model.body[1].parameters():
        p.requires_grad_(False)
    keep_frozen_norms_in_eval(model)
    assert not model.body[1].training and model.body[4].training


def test_lr_scale_multiplies_the_scheduled_lr():
    model = _mlp()
    scales = discriminative_scales(layer_groups(model), 10.0)
    trainer = _trainer(model, [], lr_scales=scales)
    trainer.step = 50  # past the warm-up
    trainer._set_lr()
    lrs = sorted({round(g["lr"], 12) for g in trainer.optimizer.param_groups})
    assert lrs == [0.001, 0.01, 0.1]
