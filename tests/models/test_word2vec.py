"""Word2vec pieces against hand computations: the loss, the noise distribution, subsampling, the
pair/window builders, and the sparse and dense gradient paths."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import chisquare

from nnrecipe.models.word2vec import (Word2Vec, cbow_windows, draw_negatives, keep_probability,
                                      negative_sampling_loss, noise_distribution, skipgram_pairs)
from nnrecipe.word_vectors import train_word2vec


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def _dot(u, v) -> float:
    return sum(a * b for a, b in zip(u, v))


def test_negative_sampling_loss_matches_a_hand_computation():
    w = [[0.5, -1.0], [2.0, 0.25]]
    pos = [[1.0, 0.5], [-0.5, 1.0]]
    negs = [[[0.2, 0.1], [-1.0, 3.0]], [[0.0, 1.0], [1.5, -0.5]]]
    expected = [-_log_sigmoid(_dot(w[n], pos[n])) - sum(_log_sigmoid(-_dot(w[n], c)) for c in negs[n])
                for n in range(2)]
    outputs = torch.tensor([[p, *ns] for p, ns in zip(pos, negs)])
    got = negative_sampling_loss(torch.tensor(w), outputs)
    assert got.tolist() == pytest.approx(expected, rel=1e-6)
    masked = negative_sampling_loss(torch.tensor(w), outputs, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert masked[0].item() == pytest.approx(-_log_sigmoid(_dot(w[0], pos[0])) - _log_sigmoid(-_dot(w[0], negs[0][0])),
                                             rel=1e-6)


def test_model_losses_use_target_for_inputs_and_context_for_outputs():
    torch.manual_seed(0)
    m = Word2Vec(6, 3)
    with torch.no_grad():
        m.context.weight.normal_()
    W, C = m.target.weight.detach(), m.context.weight.detach()
    # skip-gram: center 1 predicts context 2; negative 2 equals the positive and is skipped
    got = m.skipgram_loss(torch.tensor([1]), torch.tensor([2]), torch.tensor([[4, 2, 5]]))
    expected = (-_log_sigmoid(_dot(W[1], C[2])) - _log_sigmoid(-_dot(W[1], C[4])) - _log_sigmoid(-_dot(W[1], C[5])))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # CBOW: the mean of the unmasked context vectors W[0], W[3] predicts center 5
    h = ((W[0] + W[3]) / 2).tolist()
    got = m.cbow_loss(torch.tensor([[0, 3, 4]]), torch.tensor([[True, True, False]]), torch.tensor([5]),
                      torch.tensor([[1, 2]]))
    expected = -_log_sigmoid(_dot(h, C[5])) - _log_sigmoid(-_dot(h, C[1])) - _log_sigmoid(-_dot(h, C[2]))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_initialization_follows_word2vec_c():
    m = Word2Vec(50, 8)
    assert m.target.weight.abs().max() <= 0.5 / 8
    assert m.target.weight.std() > 0
    assert torch.count_nonzero(m.context.weight) == 0


def test_noise_words_follow_count_to_the_three_quarters():
    counts = torch.tensor([1000, 200, 50, 10, 3, 1])
    probs = noise_distribution(counts, 0.75)
    hand = [c ** 0.75 for c in counts.tolist()]
    assert probs.tolist() == pytest.approx([h / sum(hand) for h in hand])
    draws = draw_negatives(probs.cumsum(0), (200_000,), torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=len(counts)).double()
    assert chisquare(observed, probs * observed.sum()).pvalue > 1e-3
    unigram = noise_distribution(counts, 1.0)  # the same draws are far from the plain unigram
    assert chisquare(observed, unigram * observed.sum()).pvalue < 1e-6


def test_keep_probability_is_word2vec_c_formula():
    counts = torch.tensor([5000, 500, 50, 5])
    t, total = 1e-2, 5555
    hand = [min(1.0, (math.sqrt(c / (t * total)) + 1) * (t * total) / c) for c in counts.tolist()]
    assert keep_probability(counts, t).tolist() == pytest.approx(hand)
    assert hand[0] < 0.2 and hand[-1] == 1.0  # frequent words are thinned, rare ones kept
    assert keep_probability(counts, 0.0).tolist() == [1.0] * 4


def test_skipgram_pairs_stay_in_sentences_and_follow_the_dynamic_window():
    n, window = 30_000, 5
    ids = torch.arange(n)  # a token's id is its position: distances can be read off the pairs
    centers, contexts = skipgram_pairs(ids, torch.zeros(n, dtype=torch.long), window, torch.Generator().manual_seed(0))
    dist = (centers - contexts).abs()
    assert dist.min() >= 1 and dist.max() <= window
    # a center uses distance o when its b ~ U{1..5} is >= o: expected 2 n (6 - o) / 5 pairs at o
    for o in range(1, window + 1):
        expected = 2 * n * (window - o + 1) / window
        assert abs((dist == o).sum().item() - expected) < 5 * math.sqrt(expected)
    sentence = torch.tensor([0, 0, 0, 1, 1, 2])
    c, x = skipgram_pairs(torch.arange(6), sentence, 1)
    assert sorted(zip(c.tolist(), x.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]


def test_cbow_windows_mask_matches_sentences_and_window():
    sentence = torch.tensor([0, 0, 0, 1, 1, 2])
    centers, ctx, mask = cbow_windows(torch.arange(6), sentence, 1)
    got = {c: sorted(x for x, m in zip(row, keep) if m)
           for c, row, keep in zip(centers.tolist(), ctx.tolist(), mask.tolist())}
    assert got == {0: [1], 1: [0, 2], 2: [1], 3: [4], 4: [3]}  # token 5 is alone: no window
    n = 5000
    centers, ctx, mask = cbow_windows(torch.arange(n), torch.arange(n) // 7, 4, torch.Generator().manual_seed(1))
    dist = (ctx - centers.unsqueeze(1)).abs()[mask]
    assert dist.max() <= 4 and dist.min() >= 1
    assert ((ctx // 7)[mask] == (centers.unsqueeze(1).expand_as(ctx) // 7)[mask]).all()


def test_sparse_and_dense_gradients_train_the_same_vectors():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 20, (600,), generator=g)
    sentence = torch.arange(600) // 12
    counts = torch.bincount(ids, minlength=20).clamp(min=1)
    trained = []
    for sparse in (False, True):
        torch.manual_seed(3)
        m = Word2Vec(20, 8, sparse=sparse)
        rows = train_word2vec(m, ids, sentence, counts, sg=True, window=3, negative=4, ns_exponent=0.75,
                              sample=0.0, lr=0.05, min_lr_factor=1e-4, batch_size=64, epochs=2,
                              generator=torch.Generator().manual_seed(7), device=torch.device("cpu"))
        trained.append((m.vectors.clone(), rows))
    assert torch.allclose(trained[0][0], trained[1][0], atol=1e-5)
    assert trained[0][1][1]["train_loss"] < trained[0][1][0]["train_loss"]  # and training lowers the loss
