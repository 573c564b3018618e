"""Word2vec with negative sampling (Mikolov et al. 2013, "Efficient Estimation of Word Representations
in Vector Space" and "Distributed Representations of Words and Phrases and their Compositionality").

- Two embedding matrices: W (target vectors, word2vec.c's syn0, the ones exported) and C (context
  vectors, syn1neg). W starts uniform in ±0.5/D, C at zero, as in word2vec.c.
- Loss of one positive pair (input vector w, positive context c) with k noise words c_1..c_k:
      ℓ = −log σ(c·w) − Σ_k log σ(−c_k·w)
  Skip-gram: w = W[center], c = C[a word of its window]. CBOW: w = h, the mean of W over the window
  (gensim's ``cbow_mean=1``), c = C[center]. A noise word equal to the positive word is skipped,
  as in word2vec.c.
- Noise distribution P_n(w) ∝ count(w)^α, α = 3/4: drawn by inverse CDF (`torch.searchsorted` on
  the cumulative distribution), which is exact, where word2vec.c's 10⁸-entry table rounds rare words.
- Subsampling of frequent words: a token of a word with frequency f = count/total is kept with
  probability min(1, (√(f/t) + 1)·t/f) — word2vec.c's (and gensim's) formula, not the paper's
  1 − √(t/f) discard probability; t = 0 keeps everything.
- Dynamic window: each center draws b uniformly from 1..window and uses the words at distance ≤ b
  (after subsampling, as word2vec.c does), which weights near words more.

`skipgram_pairs` and `cbow_windows` build a whole chunk of training examples with one tensor
operation per window offset, not one Python step per pair.

Hand-written: torch has no word2vec, and gensim's C loop can neither share the project's run
directory nor run on a GPU; the algorithm is a few tensor lines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def keep_probability(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """P(keep a token of word i) = min(1, (√(f_i/t) + 1)·t/f_i), f_i = count_i / Σ counts."""
    counts = counts.double()
    if sample <= 0:
        return torch.ones_like(counts)
    threshold = sample * counts.sum()  # t·total, in counts
    return ((counts / threshold).sqrt() + 1).mul(threshold / counts).clamp(max=1.0)


def noise_distribution(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor:
    """P_n(i) = count_i^α / Σ_j count_j^α."""
    weights = counts.double().pow(exponent)
    return weights / weights.sum()


def draw_negatives(cdf: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """Word ids drawn from the distribution whose cumulative sums are `cdf` (float64, last ≈ 1)."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.numel() - 1)


def _reduced_windows(n: int, window: int, generator) -> torch.Tensor:
    return torch.randint(1, window + 1, (n,), generator=generator)


def skipgram_pairs(ids: torch.Tensor, sentence: torch.Tensor, window: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(centers, contexts): every pair at distance o ≤ b_center within one sentence."""
    b = _reduced_windows(ids.numel(), window, generator)
    centers, contexts = [], []
    for o in range(1, min(window, ids.numel() - 1) + 1):
        same = sentence[o:] == sentence[:-o]
        right = same & (b[:-o] >= o)  # center i, context i + o
        left = same & (b[o:] >= o)  # center i + o, context i
        centers += [ids[:-o][right], ids[o:][left]]
        contexts += [ids[o:][right], ids[:-o][left]]
    if not centers:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty
    return torch.cat(centers), torch.cat(contexts)


def cbow_windows(ids: torch.Tensor, sentence: torch.Tensor, window: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centers [N], context ids [N, 2·window], mask [N, 2·window]) for every center with at least
    one context word; masked slots hold id 0."""
    n = ids.numel()
    b = _reduced_windows(n, window, generator)
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])
    pos = torch.arange(n).unsqueeze(1) + offsets
    inside = (pos >= 0) & (pos < n)
    pos = pos.clamp(0, max(n - 1, 0))
    mask = inside & (sentence[pos] == sentence.unsqueeze(1)) & (offsets.abs() <= b.unsqueeze(1))
    has = mask.any(1)
    mask = mask[has]
    return ids[has], ids[pos[has]] * mask, mask


def negative_sampling_loss(inputs: torch.Tensor, outputs: torch.Tensor,
                           negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ℓ_n = −log σ(o_n0·w_n) − Σ_{j=1..k} m_nj log σ(−o_nj·w_n) for inputs w [N, D] and outputs
    o [N, 1+k, D]: the positive context vector, then the k noise vectors; mask m [N, k] (1 = use,
    default all). Returns [N]."""
    # one broadcast product for all 1+k scores: CPU bmm over N tiny matrices is ~20× slower here
    scores = (outputs * inputs.unsqueeze(1)).sum(-1)
    neg = F.logsigmoid(-scores[:, 1:])
    if negative_mask is not None:
        neg = neg * negative_mask
    return -(F.logsigmoid(scores[:, 0]) + neg.sum(-1))


class Word2Vec(nn.Module):
    """Target (W) and context (C) embeddings; ``sparse`` gives sparse gradients (torch.optim.SGD
    then updates only the rows a batch touched)."""

    def __init__(self, vocab_size: int, dim: int, *, sparse: bool = False):
        super().__init__()
        self.target = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.context = nn.Embedding(vocab_size, dim, sparse=sparse)
        with torch.no_grad():
            self.target.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.context.weight.zero_()

    @property
    def vectors(self) -> torch.Tensor:
        return self.target.weight.detach()

    def skipgram_loss(self, centers: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Per-pair loss [N] of centers [N] predicting contexts [N] against negatives [N, k]."""
        outputs = self.context(torch.cat([contexts.unsqueeze(1), negatives], 1))  # one gather
        return negative_sampling_loss(self.target(centers), outputs,
                                      (negatives != contexts.unsqueeze(1)).to(outputs.dtype))

    def cbow_loss(self, context_ids: torch.Tensor, mask: torch.Tensor, centers: torch.Tensor,
                  negatives: torch.Tensor) -> torch.Tensor:
        """Per-window loss [N]: the masked mean of W over context_ids [N, 2w] predicts centers [N]."""
        weights = mask.to(self.target.weight.dtype)
        h = (self.target(context_ids) * weights.unsqueeze(2)).sum(1) / weights.sum(1, keepdim=True)
        outputs = self.context(torch.cat([centers.unsqueeze(1), negatives], 1))
        return negative_sampling_loss(h, outputs, (negatives != centers.unsqueeze(1)).to(h.dtype))


__all__ = ["Word2Vec", "cbow_windows", "draw_negatives", "keep_probability", "negative_sampling_loss",
           "noise_distribution", "skipgram_pairs"]
