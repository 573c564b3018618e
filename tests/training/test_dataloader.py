"""The DataLoader path sees the same batches in the same order as the tensor-indexing fast path."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from nnrecipe.config import ScheduleConfig, resolve_config
from nnrecipe.models import MLP
from nnrecipe.training.data_loading import DatasetBatches, tensor_batches, training_data
from nnrecipe.training.loop import Trainer
from nnrecipe.training.schedules import build_schedule
from testutil import FAST
from nnrecipe.driver import fit


def _fit(X, y, data, *, accumulate=1):
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(16,), dropout=0.2)  # dropout: the global RNG must be drawn in the same order too
    sched = build_schedule(ScheduleConfig(name="cosine"), base_lr=0.05, total_steps=50)
    trainer = Trainer(model=model, loss_fn=F.cross_entropy, optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
                      schedule=sched, classification=True, accumulate=accumulate)
    trainer.fit(*data, X[:10], y[:10], epochs=3, batch_size=8, generator=torch.Generator().manual_seed(3))
    return model


@pytest.mark.parametrize("workers,accumulate", [(0, 1), (1, 2)])
def test_dataloader_path_equals_tensor_path(workers, accumulate):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(70, 5, generator=g), torch.randint(0, 3, (70,), generator=g)
    fast = _fit(X, y, (X, y), accumulate=accumulate)
    loaded = _fit(X, y, (tensor_batches(X, y, device=torch.device("cpu"), workers=workers), None),
                  accumulate=accumulate)
    for a, b in zip(fast.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_training_data_chooses_the_path():
    X, y = torch.randn(4, 2), torch.arange(4)
    cfg = resolve_config(overrides=["train.loader=auto"])
    assert training_data(cfg.train, X, y, device=torch.device("cpu"))[0] is X
    cfg = resolve_config(overrides=["train.loader=dataloader", "train.workers=1", "train.persistent_workers=true"])
    batches, none = training_data(cfg.train, X, y, device=torch.device("cpu"))
    assert isinstance(batches, DatasetBatches) and none is None and len(batches) == 4
    assert batches.loader.num_workers == 1 and batches.loader.persistent_workers
    assert not batches.loader.pin_memory  # auto: CUDA only
    out = list(batches.batches([torch.tensor([3, 1]), torch.tensor([0])]))
    assert [yb.tolist() for _, yb in out] == [[3, 1], [0]]


def test_fit_with_dataloader_gives_the_same_run(tmp_path):
    fit("iris", overrides=FAST, out=tmp_path / "a")
    fit("iris", overrides=FAST + ["train.loader=dataloader"], out=tmp_path / "b")
    ha, hb = (tmp_path / "a" / "history.csv").read_text(), (tmp_path / "b" / "history.csv").read_text()
    strip = lambda text: [line.rsplit(",", 1)[0] for line in text.splitlines()]  # drop the seconds column
    assert strip(ha) == strip(hb)
    ma, mb = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert ma["test"] == mb["test"]
