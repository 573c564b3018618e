"""Transformers (Vaswani et al. 2017) in three shapes, built from the pre-LN blocks of attention.py:

- ``TransformerClassifier`` (kind "encoder"): tokens or features [B, T] / [B, T, D] → embedding +
  positions → N blocks with a key-padding mask → final LN → pool → head [B, C]. Pooling is the mean
  over valid tokens, h̄ = Σ_t m_t h_t / Σ_t m_t (m = 1 on real tokens), or a learned CLS token
  prepended to the sequence (BERT; Devlin et al. 2019) whose final state is classified. With
  ``pool="none"`` every position is classified instead, logits [B, T, C] (sequence tagging; the
  loss masks the padded positions).
- ``TransformerLM`` (kind "decoder"): causal language model, logits [B, T, V] where position t sees
  tokens ≤ t only (GPT; Radford et al. 2018). ``generate`` samples from softmax(logits / τ).
- ``TransformerSeq2Seq`` (kind "encoder_decoder"): encoder over the source, decoder with causal
  self-attention and cross-attention to the encoder states; ``greedy_decode`` as seq2seq's.

Token id 0 is <pad> everywhere (the embedding's padding_idx); a token batch without ``lengths``
takes its padding mask from the ids. Each model's classifier is ``self.head``, the last nn.Linear
registered, so ``initialize`` finds it.
"""

from __future__ import annotations

import torch
from torch import nn

from nnrecipe.models.attention import CrossAttentionBlock, PositionEncoding, TransformerBlock, padding_mask

POOLS = ("mean", "cls", "none")
PAD_ID = 0


def _key_padding(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    if lengths is not None:
        return padding_mask(lengths.to(x.device), x.shape[1])
    if x.dtype == torch.long:
        return x == PAD_ID
    return None


def _blocks(depth: int, dim: int, heads: int, mlp_ratio: float, dropout: float, block=TransformerBlock) -> nn.ModuleList:
    return nn.ModuleList(block(dim, heads, mlp_ratio=mlp_ratio, dropout=dropout) for _ in range(depth))


class TransformerClassifier(nn.Module):
    def __init__(self, *, out_features: int, vocab_size: int | None = None, input_size: int | None = None,
                 dim: int = 64, heads: int = 4, depth: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 positions: str = "sinusoidal", max_len: int = 512, pool: str = "mean"):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token ids) or input_size (float features)")
        if pool not in POOLS:
            raise ValueError(f"unknown pool '{pool}'; choose one of {', '.join(POOLS)}")
        self.pool = pool
        self.embed = (nn.Embedding(vocab_size, dim, padding_idx=PAD_ID) if vocab_size is not None
                      else nn.Linear(input_size, dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.positions = PositionEncoding(dim, kind=positions, max_len=max_len + (pool == "cls"))
        self.drop = nn.Dropout(dropout)
        self.blocks = _blocks(depth, dim, heads, mlp_ratio, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_features)

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor | None, need_weights: bool):
        pad = _key_padding(x, lengths)
        h = self.embed(x)
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1).to(h.dtype), h], dim=1)
            if pad is not None:
                pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
        h = self.drop(self.positions(h))
        maps = []
        for block in self.blocks:
            h, w = block(h, key_padding_mask=pad, need_weights=need_weights)
            maps.append(w)
        return self.norm(h), pad, maps

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h, pad, _ = self._encode(x, lengths, need_weights=False)
        if self.pool == "none":
            return self.head(h)
        if self.cls is not None:
            return self.head(h[:, 0])
        if pad is None:
            return self.head(h.mean(dim=1))
        valid = (~pad).unsqueeze(-1).to(h.dtype)
        return self.head((h * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0))

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per block, the attention weights [B, heads, T, T] (explicit path, for plotting)."""
        return self._encode(x, lengths, need_weights=True)[2]


class TransformerLM(nn.Module):
    def __init__(self, *, vocab_size: int, dim: int = 64, heads: int = 4, depth: int = 4, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, positions: str = "sinusoidal", max_len: int = 512):
        super().__init__()
        self.max_len = max_len
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        self.positions = PositionEncoding(dim, kind=positions, max_len=max_len)
        self.drop = nn.Dropout(dropout)
        self.blocks = _blocks(depth, dim, heads, mlp_ratio, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T] → next-token logits [B, T, V]. `lengths` is accepted for a uniform interface and
        not needed: right padding is never seen by earlier positions under the causal mask."""
        h = self.drop(self.positions(self.embed(x)))
        for block in self.blocks:
            h, _ = block(h, causal=True)
        return self.head(self.norm(h))

    @torch.no_grad()
    def generate(self, prefix: torch.Tensor, steps: int, *, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append `steps` tokens to prefix [B, T0] → [B, T0 + steps], each drawn from softmax(z/τ)
        (τ = 0: argmax). The context is cropped to the last max_len tokens; no key/value cache, so each
        step re-runs the prefix (fine at this size)."""
        was_training = self.training
        self.eval()
        seq = prefix
        try:
            for _ in range(steps):
                logits = self(seq[:, -self.max_len:])[:, -1]
                if temperature == 0:
                    nxt = logits.argmax(dim=-1, keepdim=True)
                else:
                    probs = (logits / temperature).softmax(dim=-1)
                    nxt = torch.multinomial(probs, 1, generator=generator)
                seq = torch.cat([seq, nxt], dim=1)
        finally:
            self.train(was_training)
        return seq


class TransformerSeq2Seq(nn.Module):
    def __init__(self, *, src_vocab: int, tgt_vocab: int, dim: int = 64, heads: int = 4, depth: int = 4,
                 decoder_depth: int | None = None, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 positions: str = "sinusoidal", max_len: int = 512):
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, dim, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab, dim, padding_idx=PAD_ID)
        self.positions = PositionEncoding(dim, kind=positions, max_len=max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = _blocks(depth, dim, heads, mlp_ratio, dropout)
        self.encoder_norm = nn.LayerNorm(dim)
        self.decoder = _blocks(decoder_depth or depth, dim, heads, mlp_ratio, dropout, block=CrossAttentionBlock)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, tgt_vocab)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor | None = None):
        """src [B, S] → (memory [B, S, dim], source padding mask [B, S] or None)."""
        pad = _key_padding(src, src_lengths)
        h = self.drop(self.positions(self.src_embed(src)))
        for block in self.encoder:
            h, _ = block(h, key_padding_mask=pad)
        return self.encoder_norm(h), pad

    def decode(self, memory: torch.Tensor, pad: torch.Tensor | None, tgt_in: torch.Tensor, *,
               need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """tgt_in [B, T] → (logits [B, T, V], last block's cross-attention averaged over heads [B, T, S])."""
        h = self.drop(self.positions(self.tgt_embed(tgt_in)))
        weights = None
        for block in self.decoder:
            h, weights = block(h, memory, memory_padding_mask=pad, need_weights=need_weights)
        attn = weights.mean(dim=1) if weights is not None else None
        return self.head(self.norm(h)), attn

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor | None, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, pad = self.encode(src, src_lengths)
        return self.decode(memory, pad, tgt_in)[0]

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor | None, max_len: int, bos_id: int,
                      eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Argmax decoding → (tokens [B, L ≤ max_len] without BOS, eos included, 0 after it;
        cross-attention [B, L, S] of the last block, head-averaged)."""
        was_training = self.training
        self.eval()
        try:
            memory, pad = self.encode(src, src_lengths)
            b = src.shape[0]
            seq = torch.full((b, 1), bos_id, dtype=torch.long, device=src.device)
            done = torch.zeros(b, dtype=torch.bool, device=src.device)
            for _ in range(max_len):
                logits, _ = self.decode(memory, pad, seq)
                nxt = logits[:, -1].argmax(dim=-1).masked_fill(done, PAD_ID)
                seq = torch.cat([seq, nxt.unsqueeze(1)], dim=1)
                done |= nxt == eos_id
                if done.all():
                    break
            # The weights in one explicit pass: row t is the step that emitted token t.
            tokens = seq[:, 1:]
            _, attn = self.decode(memory, pad, seq[:, :-1], need_weights=True)
        finally:
            self.train(was_training)
        return tokens, attn
