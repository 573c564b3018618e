import numpy as np
import torch
import torch.nn.functional as F

from nnrecipe.post.temperature import apply_temperature, fit_temperature
from nnrecipe.post.temperature import temperature_fit


def _nll(logits, y, t):
    return F.cross_entropy(logits / t, y).item()


def test_fit_temperature_matches_grid_minimum():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (2000,), generator=g)
    true = torch.randn(2000, 5, generator=g, dtype=torch.float64)
    true[torch.arange(2000), y] += 1.5
    overconfident = true * 4.0  # a model that is right as often but 4x too sure
    t = fit_temperature(overconfident, y)
    grid = np.linspace(0.5, 10, 4000)
    best = grid[np.argmin([_nll(overconfident, y, g_) for g_ in grid])]
    assert abs(t - best) < 5e-3
    assert t > 2.0  # overconfident logits need T well above 1
    assert _nll(overconfident, y, t) < _nll(overconfident, y, 1.0)


def test_underconfident_gets_t_below_one():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 3, (1000,), generator=g)
    logits = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    logits[torch.arange(1000), y] += 3.0
    t = fit_temperature(logits * 0.2, y)
    assert t < 1.0


def test_temperature_keeps_argmax_and_sums_to_one():
    logits = torch.randn(50, 7, dtype=torch.float64)
    p = apply_temperature(logits, 2.5)
    assert torch.equal(p.argmax(1), logits.argmax(1))
    torch.testing.assert_close(p.sum(1), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(p, torch.softmax(logits / 2.5, -1))


def test_perfectly_separated_validation_keeps_t_equal_one():
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    logits = torch.nn.functional.one_hot(y, 3).double() * 3.0
    assert temperature_fit(logits, y) == {"temperature": 1.0, "degenerate": True, "reason": "separated"}
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (500,), generator=g)
    noisy = torch.randn(500, 3, generator=g, dtype=torch.float64)
    noisy[torch.arange(500), labels] += 1.5  # right more often than not, but not always
    fitted = temperature_fit(noisy * 5, labels)
    assert not fitted["degenerate"] and fitted["temperature"] > 1.0
