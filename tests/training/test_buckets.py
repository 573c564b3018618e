"""Length buckets: every row once per epoch, batches of similar length cut to their longest, the
same batches from the same generator state (exact resume), and less padding than random batches."""

from __future__ import annotations

import torch

from nnrecipe.data import pad_batch
from nnrecipe.training.buckets import LengthBuckets


def _data(n=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 80, (n,), generator=g)
    X, _ = pad_batch([list(range(4, 4 + int(k))) for k in lengths])
    return X, torch.arange(n) % 3, lengths


def test_an_epoch_covers_every_row_once_and_cuts_each_batch_to_its_longest():
    X, y, lengths = _data()
    buckets = LengthBuckets(X, y)
    order = buckets.order(len(y), 32, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert sorted(torch.cat(order).tolist()) == list(range(len(y)))
    for idx in order:
        xb, yb = buckets.take(X, y, idx)
        assert xb.shape[1] == int(lengths[idx].max()) and torch.equal(yb, y[idx])
        assert torch.equal(xb, X[idx][:, : xb.shape[1]])


def test_the_same_generator_state_gives_the_same_batches_and_padding_falls():
    X, y, lengths = _data()
    buckets = LengthBuckets(X, y)
    a = buckets.order(len(y), 32, torch.Generator().manual_seed(5), torch.device("cpu"))
    b = buckets.order(len(y), 32, torch.Generator().manual_seed(5), torch.device("cpu"))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    random = torch.randperm(len(y), generator=torch.Generator().manual_seed(5)).split(32)
    padded = lambda batches: sum(len(i) * int(lengths[i].max()) for i in batches)  # noqa: E731
    assert padded(a) < 0.75 * padded(random)


def test_decoder_inputs_and_token_targets_are_cut_to_their_common_length():
    src, _ = pad_batch([[5] * k for k in (3, 9, 4, 2)])
    tgt, _ = pad_batch([[6] * k for k in (7, 2, 2, 5)])
    buckets = LengthBuckets((src, tgt), tgt)
    (s, t), y = buckets.take((src, tgt), tgt, torch.tensor([0, 2]))
    assert (s.shape[1], t.shape[1], y.shape[1]) == (4, 7, 7)  # decoder inputs and outputs stay aligned
