"""nnrecipe.metrics.sequence against torch's cross_entropy and hand counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nnrecipe.metrics import exact_match, perplexity, perplexity_from_nll, token_accuracy
from nnrecipe.metrics.sequence import perplexity_from_nll as direct_import

TOL = {"rel": 1e-9, "abs": 1e-12}


def _batch(seed: int, n: int = 6, t: int = 9, v: int = 11):
    """Random logits and targets whose rows end in a random amount of padding (id 0)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, t, v, generator=g) * 3
    targets = torch.randint(1, v, (n, t), generator=g)
    for i, length in enumerate(torch.randint(1, t + 1, (n,), generator=g).tolist()):
        targets[i, length:] = 0
    return logits, targets


def _pad_garbage(logits, targets, extra: int = 4, fill=None):
    """Append `extra` pad columns whose logits are huge, or `fill` (NaN, inf)."""
    n, _, v = logits.shape
    junk = torch.randn(n, extra, v) * 1e4 if fill is None else torch.full((n, extra, v), fill)
    pads = torch.zeros(n, extra, dtype=torch.long)
    return torch.cat([logits, junk], 1), torch.cat([targets, pads], 1)


@pytest.mark.parametrize("v", [2, 7, 1000])
def test_uniform_logits_give_perplexity_v(v):
    targets = torch.randint(1, v, (3, 5))
    targets[0, 3:] = 0
    assert perplexity(torch.zeros(3, 5, v), targets) == pytest.approx(v, **TOL)
    assert perplexity(torch.full((3, 5, v), 7.5), targets) == pytest.approx(v, **TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perplexity_matches_torch_cross_entropy(seed):
    logits, targets = _batch(seed)
    ce = F.cross_entropy(logits.double().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                         ignore_index=0)
    assert perplexity(logits, targets) == pytest.approx(math.exp(ce.item()), **TOL)
    assert perplexity(logits, targets) == pytest.approx(perplexity_from_nll(ce.item()), **TOL)


@pytest.mark.parametrize("fill", [None, float("nan"), float("inf"), -float("inf")])
def test_padding_never_changes_results(fill):
    logits, targets = _batch(3)
    padded_logits, padded_targets = _pad_garbage(logits, targets, fill=fill)
    assert perplexity(padded_logits, padded_targets) == pytest.approx(
        perplexity(logits, targets), **TOL)
    assert token_accuracy(padded_logits, padded_targets) == pytest.approx(
        token_accuracy(logits, targets), **TOL)
    ids = logits.argmax(-1)
    padded_ids = torch.cat([ids, torch.randint(1, 11, (ids.shape[0], 4))], 1)
    assert token_accuracy(padded_ids, padded_targets) == token_accuracy(ids, targets)


def test_other_pad_id_and_no_padding():
    logits, targets = _batch(4)
    shifted = torch.where(targets == 0, torch.full_like(targets, 5), targets)  # pad is now 5
    keep = shifted != 5
    ce = F.cross_entropy(logits.double()[keep], shifted[keep])
    assert perplexity(logits, shifted, pad_id=5) == pytest.approx(math.exp(ce.item()), **TOL)
    ce_all = F.cross_entropy(logits.double().reshape(-1, 11), targets.reshape(-1))
    assert perplexity(logits, targets, pad_id=None) == pytest.approx(math.exp(ce_all.item()), **TOL)


def test_token_accuracy_ids_and_logits_by_hand():
    targets = torch.tensor([[4, 2, 7, 0, 0], [1, 3, 3, 3, 0]])
    preds = torch.tensor([[4, 9, 7, 4, 1], [1, 3, 0, 2, 3]])
    # Non-pad positions: 3 + 4 = 7; correct: (4, 7) and (1, 3) → 4 of 7. Pads never count.
    assert token_accuracy(preds, targets) == pytest.approx(4 / 7, **TOL)
    # All 10 positions: pads at [0,3],[0,4],[1,4] are all predicted wrong → still 4 of 10.
    assert token_accuracy(preds, targets, pad_id=None) == pytest.approx(4 / 10, **TOL)
    logits = F.one_hot(preds, 10).float() * 2.0 + torch.randn(2, 5, 10) * 0.1
    assert token_accuracy(logits, targets) == pytest.approx(4 / 7, **TOL)
    assert token_accuracy(preds.tolist(), targets.tolist()) == pytest.approx(4 / 7, **TOL)


def test_token_accuracy_matches_elementwise_count():
    logits, targets = _batch(5, n=20, t=15, v=4)
    ids = logits.argmax(-1)
    hits = sum(int(p == y) for p, y in zip(ids.flatten().tolist(), targets.flatten().tolist()) if y)
    assert token_accuracy(logits, targets) == pytest.approx(hits / int((targets != 0).sum()), **TOL)


def test_perplexity_from_nll():
    assert perplexity_from_nll(0.0) == 1.0
    assert perplexity_from_nll(math.log(37.0)) == pytest.approx(37.0, **TOL)
    assert perplexity_from_nll(1e4) == math.inf
    assert math.isnan(perplexity_from_nll(float("nan")))
    assert direct_import is perplexity_from_nll


def test_exact_match():
    assert exact_match(["a b", "c", "d "], ["a b", "c", "d"]) == pytest.approx(2 / 3)
    assert exact_match([[1, 2, 3], [4], []], [[1, 2, 3], [4, 5], []]) == pytest.approx(2 / 3)
    assert exact_match([torch.tensor([1, 2]), (3,)], [[1, 2], torch.tensor([3])]) == 1.0
    assert exact_match([[1, 2]], [[2, 1]]) == 0.0


@pytest.mark.parametrize("call,match", [
    (lambda: exact_match(["a"], ["a", "b"]), "length mismatch"),
    (lambda: exact_match([], []), "empty"),
    (lambda: exact_match(["ab"], [["a", "b"]]), "cannot compare"),
    (lambda: exact_match("ab", "ab"), "lists"),
    (lambda: token_accuracy(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.long) + 1), "shape"),
    (lambda: token_accuracy(torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.long)), "padding"),
    (lambda: perplexity(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long)), "logits"),
    (lambda: perplexity(torch.zeros(2, 3, 4), torch.ones(2, 3)), "integer"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
