"""Encoder–decoder RNN with attention (many-to-many of different lengths: translation, copying).

Encoder: embedding + GRU/LSTM over the source (packed, so padding is never read), states
k_1…k_S (both directions concatenated when bidirectional). Decoder step t, with s_{t−1} the
previous top-layer decoder state as the query (Bahdanau's order, used for every score):

    e_{t,j} = score(s_{t−1}, k_j),  −∞ where source j is padding
    α_t = softmax(e_t),  c_t = Σ_j α_{t,j} k_j
    s_t = Cell([E y_{t−1}; c_t], s_{t−1}),  logits_t = W [s_t; c_t] + b

Scores (``attention``):
- ``additive`` (Bahdanau et al. 2015): score(q, k) = vᵀ tanh(W_q q + W_k k)
- ``dot``      (Luong et al. 2015):    score(q, k) = qᵀ k  (needs key dim = hidden: unidirectional)
- ``general``  (Luong et al. 2015):    score(q, k) = qᵀ W k
- ``none``: no context (Sutskever et al. 2014); the decoder starts from the encoder's final state.

The decoder's initial state is the encoder's final state (through tanh(W [h_fwd; h_bwd] + b) when
bidirectional, with c₀ = 0 for an LSTM). Teacher forcing (Williams & Zipser 1989) with ratio p:
at each step after the first, each sequence takes the gold y_{t−1} with probability p, else the
model's own argmax (scheduled sampling, Bengio et al. 2015).

Beam search (`nnrecipe.models.beam_search`, shared with the image captioner) keeps the ``beam``
best hypotheses and ranks finished ones by the GNMT-normalized log-probability log P(Y | X) / lp(Y),
lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016), α = ``length_penalty``. Beams are batched; the batch is
looped over. With beam = 1 this is exactly greedy decoding. Additive attention lives in
`nnrecipe.models.additive_attention` (shared with the captioner).

Token id 0 is <pad> in both vocabularies (which may differ: ``src_vocab``, ``tgt_vocab``).
"""

from __future__ import annotations

import torch
from torch import nn

from nnrecipe.models.additive_attention import AdditiveAttention
from nnrecipe.models.beam_search import beam_search_one, gnmt_length_penalty, pad_hypotheses
from nnrecipe.models.rnn import PAD_ID, State, make_rnn, run_packed, sequence_mask, top_hidden
from nnrecipe.models.teacher_forcing import teacher_forced

ATTENTIONS = ("additive", "dot", "general", "none")


class DotAttention(nn.Module):
    """Luong: score(q, k) = qᵀ k, or qᵀ W k (``general``); W k is computed once per source."""

    def __init__(self, query_dim: int, key_dim: int, *, general: bool):
        super().__init__()
        if not general and query_dim != key_dim:
            raise ValueError(f"dot attention needs equal query/key sizes ({query_dim} vs {key_dim}); "
                             "use attention 'general' with a bidirectional encoder")
        self.w = nn.Linear(key_dim, query_dim, bias=False) if general else None

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return self.w(keys) if self.w is not None else keys

    def score(self, q: torch.Tensor, prepared: torch.Tensor) -> torch.Tensor:
        return (prepared @ q.unsqueeze(-1)).squeeze(-1)


def _index_state(state: State, idx: torch.Tensor) -> State:
    if isinstance(state, tuple):
        return tuple(s.index_select(1, idx) for s in state)
    return state.index_select(1, idx)


class Seq2Seq(nn.Module):
    def __init__(self, *, src_vocab: int, tgt_vocab: int, cell: str = "gru", attention: str = "additive",
                 embed_dim: int = 64, hidden: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"unknown attention '{attention}'; choose one of {', '.join(ATTENTIONS)}")
        if cell not in ("gru", "lstm", "rnn"):
            raise ValueError(f"unknown cell '{cell}'; choose one of gru, lstm, rnn")
        self.cell, self.num_layers, self.hidden = cell, num_layers, hidden
        key_dim = hidden * (2 if bidirectional else 1)
        self.src_embed = nn.Embedding(src_vocab, embed_dim, padding_idx=PAD_ID)
        self.encoder = make_rnn(cell, embed_dim, hidden, num_layers=num_layers, bidirectional=bidirectional,
                                dropout=dropout)
        self.bridge = nn.Linear(key_dim, hidden) if bidirectional else None
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_dim, padding_idx=PAD_ID)
        if attention == "additive":
            self.attention: nn.Module | None = AdditiveAttention(hidden, key_dim, hidden)
        elif attention in ("dot", "general"):
            self.attention = DotAttention(hidden, key_dim, general=attention == "general")
        else:
            self.attention = None
        context = key_dim if self.attention is not None else 0
        self.decoder = make_rnn(cell, embed_dim + context, hidden, num_layers=num_layers, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden + context, tgt_vocab)

    # --- encoder and one decoder step ---------------------------------------------------------------

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor | None = None):
        """src [B, S] → (keys [B, S, K], prepared keys, padding mask [B, S] (True = pad), decoder state)."""
        if src_lengths is None:
            src_lengths = (src != PAD_ID).sum(dim=1)  # right padding assumed
        pad = ~sequence_mask(src_lengths.to(src.device), src.shape[1])
        keys, state = run_packed(self.encoder, self.drop(self.src_embed(src)), src_lengths)
        if self.bridge is not None:
            h = top_hidden(state)
            h = h.view(self.num_layers, 2, *h.shape[1:])  # [layers, dirs, B, H]
            h = torch.tanh(self.bridge(torch.cat([h[:, 0], h[:, 1]], dim=-1))).contiguous()
            state = (h, torch.zeros_like(h)) if self.cell == "lstm" else h
        prepared = self.attention.prepare(keys) if self.attention is not None else None
        return keys, prepared, pad, state

    def step(self, y_prev: torch.Tensor, state: State, keys: torch.Tensor, prepared: torch.Tensor | None,
             pad: torch.Tensor) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One decoder step: y_prev [B] → (logits [B, V], state, attention weights [B, S])."""
        emb = self.drop(self.tgt_embed(y_prev))
        if self.attention is None:
            out, state = self.decoder(emb.unsqueeze(1), state)
            return self.head(self.drop(out[:, 0])), state, torch.zeros_like(pad, dtype=keys.dtype)
        scores = self.attention.score(top_hidden(state)[-1], prepared)
        weights = scores.masked_fill(pad, float("-inf")).softmax(dim=-1)
        context = (weights.unsqueeze(1) @ keys).squeeze(1)
        out, state = self.decoder(torch.cat([emb, context], dim=-1).unsqueeze(1), state)
        return self.head(self.drop(torch.cat([out[:, 0], context], dim=-1))), state, weights

    # --- training and decoding ----------------------------------------------------------------------

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor | None, tgt_in: torch.Tensor,
                teacher_forcing: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tgt_in [B, T] (BOS + target without its last token) → (logits [B, T, V], attention [B, T, S];
        all-zero attention when ``attention`` is none)."""
        keys, prepared, pad, state = self.encode(src, src_lengths)
        return teacher_forced(lambda y, s: self.step(y, s, keys, prepared, pad), state, tgt_in,
                              teacher_forcing=teacher_forcing, generator=generator)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor | None, max_len: int, bos_id: int,
                      eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Argmax decoding → (tokens [B, L ≤ max_len] without BOS, <eos> included and 0 after it,
        attention [B, L, S]). Stops when every sequence has emitted <eos>."""
        was_training = self.training
        self.eval()
        try:
            keys, prepared, pad, state = self.encode(src, src_lengths)
            y = torch.full((src.shape[0],), bos_id, dtype=torch.long, device=src.device)
            done = torch.zeros_like(y, dtype=torch.bool)
            tokens, attn = [], []
            for _ in range(max_len):
                z, state, w = self.step(y, state, keys, prepared, pad)
                y = z.argmax(dim=-1).masked_fill(done, PAD_ID)
                tokens.append(y)
                attn.append(w)
                done |= y == eos_id
                if done.all():
                    break
        finally:
            self.train(was_training)
        return torch.stack(tokens, dim=1), torch.stack(attn, dim=1)

    @torch.no_grad()
    def beam_search(self, src: torch.Tensor, src_lengths: torch.Tensor | None, max_len: int, bos_id: int,
                    eos_id: int, beam: int = 4, length_penalty: float = 0.6) -> torch.Tensor:
        """Beam search (module docstring) → tokens [B, L ≤ max_len] without BOS, 0-padded."""
        if beam < 1:
            raise ValueError(f"beam must be ≥ 1, got {beam}")
        was_training = self.training
        self.eval()
        try:
            keys, prepared, pad, state = self.encode(src, src_lengths)
            best = []
            for i in range(src.shape[0]):
                one = torch.tensor([i], device=src.device)
                best.append(self._beam_one(keys[i:i + 1], None if prepared is None else prepared[i:i + 1],
                                           pad[i:i + 1], _index_state(state, one), max_len, bos_id, eos_id,
                                           beam, length_penalty))
        finally:
            self.train(was_training)
        return pad_hypotheses(best, src.device)

    def _beam_one(self, keys, prepared, pad, state, max_len, bos_id, eos_id, beam, alpha) -> list[int]:
        def step(y, state, k):
            z, state, _ = self.step(y, state, keys.expand(k, -1, -1),
                                    None if prepared is None else prepared.expand(k, -1, -1), pad.expand(k, -1))
            return z, state
        return beam_search_one(step, _index_state, state, max_len=max_len, bos_id=bos_id, eos_id=eos_id,
                               beam=beam, alpha=alpha, device=keys.device, dtype=keys.dtype)


__all__ = ["ATTENTIONS", "AdditiveAttention", "DotAttention", "Seq2Seq", "gnmt_length_penalty"]
