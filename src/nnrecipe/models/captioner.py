"""Image captioning with soft attention: "Show, Attend and Tell" (Xu et al. 2015, §3.1, soft attention).

Encoder: the convolutional stages of the project's `CNN` or `ResNet` (``features``, no pooling or
head) turn an image into a grid of L = h·w annotation vectors a_1…a_L ∈ R^D (D = the last stage's
width). Decoder, an LSTM (or GRU) cell with hidden size n, started from the mean annotation:

    h_0 = tanh(W_h ā),  c_0 = tanh(W_c ā),   ā = (1/L) Σ_i a_i
    e_ti = vᵀ tanh(W_q h_{t−1} + W_k a_i),   α_t = softmax(e_t)          (additive attention)
    β_t = σ(W_β h_{t−1} + b_β)  (the gate of §4.2.1; β_t = 1 with ``gate`` off)
    ẑ_t = β_t ⊙ Σ_i α_ti a_i
    h_t, c_t = LSTM([E y_{t−1}; ẑ_t], (h_{t−1}, c_{t−1}))
    p(y_t | a, y_<t) = softmax(L_o dropout(E y_{t−1} + L_h h_t + L_z ẑ_t))   (the deep output, eq. 7)

Training is teacher-forced (y_{t−1} the gold previous word; with ``teacher_forcing`` p < 1 each
caption takes its own argmax instead with probability 1 − p, scheduled sampling, Bengio et al. 2015).
`forward` returns the logits and the attention weights α [B, T, L]; the doubly stochastic penalty
λ Σ_i (1 − Σ_t α_ti)² (eq. 14) is the task's (`nnrecipe.captioning`). Decoding is greedy (argmax
each step, batched) or beam search (`nnrecipe.models.beam_search`, one image at a time). The LSTM
cell's forget-gate bias starts at 1 (Jozefowicz et al. 2015); token id 0 is padding.
"""

from __future__ import annotations

import torch
from torch import nn

from nnrecipe.models.additive_attention import AdditiveAttention
from nnrecipe.models.beam_search import beam_search_one, pad_hypotheses
from nnrecipe.models.cnn import CNN
from nnrecipe.models.resnet import ResNet
from nnrecipe.models.teacher_forcing import teacher_forced

ENCODERS = ("cnn", "resnet")
CELLS = ("lstm", "gru")
PAD_ID = 0


def _select(state, idx: torch.Tensor):
    """Rows `idx` of a decoder state (h, c, a, W_k a, gate-free context) tuple."""
    return tuple(s.index_select(0, idx) for s in state)


class Captioner(nn.Module):
    def __init__(self, *, in_channels: int, image_size: tuple[int, int], vocab_size: int, encoder: str = "cnn",
                 channels: tuple[int, ...] = (32, 64), convs_per_stage: int = 2,
                 widths: tuple[int, ...] = (32, 64, 128), blocks: tuple[int, ...] = (2, 2, 2), norm: str = "batch",
                 activation: str = "relu", negative_slope: float = 0.01, cell: str = "lstm", embed_dim: int = 64,
                 hidden: int = 128, attention_dim: int = 64, gate: bool = True, dropout: float = 0.0):
        super().__init__()
        if encoder not in ENCODERS or cell not in CELLS:
            raise ValueError(f"captioner encoder must be one of {ENCODERS} and cell one of {CELLS}, "
                             f"got {encoder!r}, {cell!r}")
        act = {"norm": norm, "activation": activation, "negative_slope": negative_slope}
        backbone = (CNN(in_channels=in_channels, image_size=image_size, out_features=1, channels=channels,
                        convs_per_stage=convs_per_stage, **act) if encoder == "cnn" else
                    ResNet(in_channels=in_channels, image_size=image_size, out_features=1, widths=widths,
                           blocks=blocks, **act))
        self.encoder = backbone.features  # the grid of annotation vectors; the classifier's head is dropped
        dim = (channels if encoder == "cnn" else widths)[-1]
        self.cell_kind, self.hidden = cell, hidden
        self.grid = self._grid(in_channels, image_size)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.init_h = nn.Linear(dim, hidden)
        self.init_c = nn.Linear(dim, hidden) if cell == "lstm" else None
        self.attention = AdditiveAttention(hidden, dim, attention_dim)
        self.gate = nn.Linear(hidden, dim) if gate else None
        self.cell = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(embed_dim + dim, hidden)
        if cell == "lstm":
            with torch.no_grad():  # gates ordered (input, forget, cell, output)
                self.cell.bias_ih[hidden:2 * hidden].fill_(1.0)
                self.cell.bias_hh[hidden:2 * hidden].zero_()
        self.out_h = nn.Linear(hidden, embed_dim)
        self.out_z = nn.Linear(dim, embed_dim, bias=False)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, vocab_size)  # the last Linear: the initializers treat it as the head

    @torch.no_grad()
    def _grid(self, in_channels: int, image_size: tuple[int, int]) -> tuple[int, int]:
        self.encoder.eval()  # a probe: no running statistics are updated
        out = self.encoder(torch.zeros(1, in_channels, *image_size))
        self.encoder.train()
        return int(out.shape[2]), int(out.shape[3])

    # --- encoder and one decoder step ---------------------------------------------------------------

    def encode(self, images: torch.Tensor):
        """images [B, C, H, W] → the decoder's start state (h, c, a [B, L, D], W_k a)."""
        a = self.encoder(images).flatten(2).transpose(1, 2)  # [B, D, h, w] → [B, L = h·w, D]
        mean = a.mean(dim=1)
        h = torch.tanh(self.init_h(mean))
        c = torch.tanh(self.init_c(mean)) if self.init_c is not None else torch.zeros_like(h)
        return h, c, a, self.attention.prepare(a)

    def step(self, y_prev: torch.Tensor, state) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """One word: y_prev [B] → (logits [B, V], state, α [B, L])."""
        h, c, a, keys = state
        alpha = self.attention.score(h, keys).softmax(dim=-1)
        z = (alpha.unsqueeze(1) @ a).squeeze(1)
        if self.gate is not None:
            z = torch.sigmoid(self.gate(h)) * z
        emb = self.embed(y_prev)
        x = torch.cat([emb, z], dim=-1)
        if self.cell_kind == "lstm":
            h, c = self.cell(x, (h, c))
        else:
            h = self.cell(x, h)
        logits = self.head(self.drop(emb + self.out_h(h) + self.out_z(z)))
        return logits, (h, c, a, keys), alpha

    # --- training and decoding ----------------------------------------------------------------------

    def forward(self, images: torch.Tensor, tgt_in: torch.Tensor, teacher_forcing: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tgt_in [B, T] (BOS + caption without its <eos>) → (logits [B, T, V], α [B, T, L])."""
        return teacher_forced(self.step, self.encode(images), tgt_in, teacher_forcing=teacher_forcing,
                              generator=generator)

    @torch.no_grad()
    def greedy_decode(self, images: torch.Tensor, *, max_len: int, bos_id: int, eos_id: int) -> torch.Tensor:
        """Argmax words → tokens [B, L ≤ max_len] without BOS, <eos> included and 0 after it."""
        state = self.encode(images)
        y = torch.full((images.shape[0],), bos_id, dtype=torch.long, device=images.device)
        done = torch.zeros_like(y, dtype=torch.bool)
        tokens = []
        for _ in range(max_len):
            z, state, _ = self.step(y, state)
            y = z.argmax(dim=-1).masked_fill(done, PAD_ID)
            tokens.append(y)
            done |= y == eos_id
            if done.all():
                break
        return torch.stack(tokens, dim=1)

    @torch.no_grad()
    def beam_search(self, images: torch.Tensor, *, max_len: int, bos_id: int, eos_id: int, beam: int = 3,
                    length_penalty: float = 0.6) -> torch.Tensor:
        """Beam search (`nnrecipe.models.beam_search`) → tokens [B, L ≤ max_len] without BOS, 0-padded."""
        start = self.encode(images)

        def step(y, state, k):
            z, state, _ = self.step(y, state)
            return z, state

        best = []
        for i in range(images.shape[0]):
            one = _select(start, torch.tensor([i], device=images.device))
            best.append(beam_search_one(step, _select, one, max_len=max_len, bos_id=bos_id, eos_id=eos_id,
                                        beam=beam, alpha=length_penalty, device=images.device, dtype=start[0].dtype))
        return pad_hypotheses(best, images.device)


def _build_captioner(spec: dict) -> nn.Module:
    keys = ("encoder", "convs_per_stage", "norm", "activation", "negative_slope", "cell", "embed_dim", "hidden",
            "attention_dim", "gate", "dropout")
    tuples = {k: tuple(spec[k]) for k in ("channels", "widths", "blocks") if k in spec}
    return Captioner(in_channels=spec["in_channels"], image_size=tuple(spec["image_size"]),
                     vocab_size=spec["vocab_size"], **{k: spec[k] for k in keys if k in spec}, **tuples)


BUILDERS: dict = {"captioner": _build_captioner}

__all__ = ["BUILDERS", "CELLS", "Captioner", "ENCODERS"]
