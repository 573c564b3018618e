"""Beam search over a step function, shared by the seq2seq decoder and the image captioner.

It keeps the ``beam`` best partial hypotheses by summed log-probability; a hypothesis that emits
<eos> among the top ``beam`` candidates is finished and ranked by the GNMT-normalized score
(Wu et al. 2016):

    score(Y) = log P(Y | X) / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^α,   α = ``length_penalty``

(|Y| counts <eos>; α = 0 is the raw log-probability, which favours short outputs). The search stops
once ``beam`` hypotheses are finished or at ``max_len`` (then the unfinished ones compete too).
One input at a time: ``step(y [k], state, k) -> (logits [k, V], state)`` advances the k live
hypotheses, ``select(state, idx)`` keeps the hypotheses ``idx`` of a state. With beam = 1 this is
exactly greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """lp(|Y|) = ((5 + |Y|) / 6)^α (Wu et al. 2016)."""
    return ((5.0 + length) / 6.0) ** alpha


def beam_search_one(step: Callable, select: Callable, state, *, max_len: int, bos_id: int, eos_id: int,
                    beam: int, alpha: float, device: torch.device, dtype: torch.dtype) -> list[int]:
    """The best hypothesis' token ids (without BOS, <eos> included when it finished)."""
    if beam < 1:
        raise ValueError(f"beam must be ≥ 1, got {beam}")
    seqs = torch.empty(1, 0, dtype=torch.long, device=device)
    scores = torch.zeros(1, dtype=dtype, device=device)
    y = torch.full((1,), bos_id, dtype=torch.long, device=device)
    finished: list[tuple[float, list[int]]] = []
    for t in range(max_len):
        z, state = step(y, state, seqs.shape[0])
        vocab = z.shape[-1]
        total = (scores.unsqueeze(1) + z.log_softmax(dim=-1)).flatten()
        # 2·beam candidates always leave ≥ beam that are not <eos> (at most one <eos> per beam).
        top_scores, top_idx = total.topk(min(2 * beam, total.numel()))
        keep_beam, keep_tok, keep_score = [], [], []
        for rank, (score, idx) in enumerate(zip(top_scores.tolist(), top_idx.tolist())):
            b, tok = divmod(idx, vocab)
            if tok == eos_id:
                if rank < beam:  # only an <eos> that would have made the beam finishes a hypothesis
                    finished.append((score / gnmt_length_penalty(t + 1, alpha), seqs[b].tolist() + [tok]))
                continue
            keep_beam.append(b)
            keep_tok.append(tok)
            keep_score.append(score)
            if len(keep_beam) == beam:
                break
        if len(finished) >= beam:
            break
        idx = torch.tensor(keep_beam, device=device)
        y = torch.tensor(keep_tok, device=device)
        seqs = torch.cat([seqs[idx], y.unsqueeze(1)], dim=1)
        scores = torch.tensor(keep_score, dtype=dtype, device=device)
        state = select(state, idx)
    else:  # max_len reached: the unfinished hypotheses compete too
        length = seqs.shape[1]
        finished += [(s / gnmt_length_penalty(length, alpha), seq) for s, seq in zip(scores.tolist(), seqs.tolist())]
    return max(finished, key=lambda f: f[0])[1]


def pad_hypotheses(best: list[list[int]], device: torch.device) -> torch.Tensor:
    """Token id lists → LongTensor [B, L], 0-padded."""
    out = torch.zeros(len(best), max(len(b) for b in best), dtype=torch.long, device=device)
    for i, seq in enumerate(best):
        out[i, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out
