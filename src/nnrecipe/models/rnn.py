"""Recurrent networks (``rnn | lstm | gru``) in the four input/output patterns of Karpathy's
"The Unreasonable Effectiveness of Recurrent Neural Networks" (2015); the fifth, many-to-many of
different lengths, is seq2seq.py.

Cells are torch's nn.RNN / nn.LSTM / nn.GRU:

    RNN   h_t = tanh(W_xh x_t + W_hh h_{t−1} + b)                        (Elman 1990)
    LSTM  c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t,  h_t = o_t ⊙ tanh(c_t)       (Hochreiter & Schmidhuber 1997)
    GRU   h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}                          (Cho et al. 2014)

stacked ``num_layers`` deep, optionally bidirectional (the two directions' states concatenated).
The constructor calls ``init_recurrent``: orthogonal W_hh blocks, Xavier W_xh, LSTM forget-gate
bias 1 (Jozefowicz et al. 2015).

Patterns (``pattern``):
- ``one_to_one``   x [B, D] (or ids [B]) → [B, C]: a single recurrent step.
- ``one_to_many``  x [B, D] (or ids [B]) → [B, T, C], T = ``out_steps``: the vector sets the initial
  state h₀ = tanh(W x + b) (every layer), and each step's input is the previous step's output fed
  back as a soft embedding E·softmax(z_{t−1}) (a learned start vector at t = 0). The soft feedback
  keeps the chain differentiable, so no teacher forcing or target sequence is needed.
- ``many_to_one``  [B, T] ids or [B, T, D] floats → [B, C] from the last valid step's state; with
  bidirectional, [forward state at the last valid step; backward state at step 0].
- ``many_to_many`` (tagging, language modelling) → [B, T, C]. Steps past ``lengths`` hold the head's
  bias only; the loss masks them (``ignore_index`` or ``sequence_mask``).

Variable-length batches: with ``lengths``, inputs are packed (``pack_padded_sequence``,
``enforce_sorted=False``), so the cell never sees the padding and a sequence's result does not
depend on what it was padded with. Token id 0 is <pad> (the embedding's padding_idx).

Truncated BPTT: ``forward_with_state(x, lengths, state) → (logits, state)`` carries the state over
chunks; ``detach_state`` cuts the graph between them. ``early_step_grad_norms`` measures
‖∂L/∂x_t‖ per step, the vanishing-gradient curve (Bengio et al. 1994; Pascanu et al. 2013).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nnrecipe.models.recurrent_init import init_recurrent

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
PATTERNS = ("one_to_one", "one_to_many", "many_to_one", "many_to_many")
PAD_ID = 0

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def make_rnn(cell: str, input_size: int, hidden: int, *, num_layers: int = 1, bidirectional: bool = False,
             dropout: float = 0.0, nonlinearity: str = "tanh") -> nn.RNNBase:
    """A batch-first nn.RNN/LSTM/GRU, initialized by ``init_recurrent``."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell '{cell}'; choose one of {', '.join(CELLS)}")
    extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    # torch applies dropout between stacked layers only (and warns if there are none).
    module = CELLS[cell](input_size, hidden, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                         dropout=dropout if num_layers > 1 else 0.0, **extra)
    init_recurrent(module)
    return module


def sequence_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True at valid steps t < length."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.to(torch.long).unsqueeze(1)


def lengths_from_padding(x: torch.Tensor) -> torch.Tensor | None:
    """Token ids [B, T] right-padded with PAD_ID → lengths (≥ 1), or None when nothing is padded
    (float features, or a full batch: then packing would be wasted work). One host read per call:
    packing needs the lengths on the CPU anyway."""
    if x.dtype not in (torch.long, torch.int) or x.dim() != 2:
        return None
    lengths = (x != PAD_ID).sum(dim=1).clamp(min=1)
    return lengths if int(lengths.min()) < x.shape[1] else None


def detach_state(state: State | None) -> State | None:
    """Cut the graph between truncated-BPTT chunks (keep the values, drop the history)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def top_hidden(state: State) -> torch.Tensor:
    """The hidden states h_n [layers·dirs, B, H] of a (h, c) LSTM state or a plain h."""
    return state[0] if isinstance(state, tuple) else state


def run_packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None,
               state: State | None = None) -> tuple[torch.Tensor, State]:
    """Run `rnn` over x [B, T, E]; with lengths, packed so padding is never read. Outputs past a
    sequence's length are 0; the final state is each sequence's own last valid step."""
    if lengths is None:
        return rnn(x, state)
    packed = pack_padded_sequence(x, lengths.detach().cpu().to(torch.long), batch_first=True, enforce_sorted=False)
    out, state = rnn(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state


class RecurrentNet(nn.Module):
    def __init__(self, *, out_features: int, cell: str = "lstm", vocab_size: int | None = None,
                 input_size: int | None = None, embed_dim: int = 64, hidden: int = 128, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, pattern: str = "many_to_one",
                 out_steps: int | None = None, nonlinearity: str = "tanh"):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token ids) or input_size (float features)")
        if pattern not in PATTERNS:
            raise ValueError(f"unknown pattern '{pattern}'; choose one of {', '.join(PATTERNS)}")
        if pattern == "one_to_many" and (out_steps is None or out_steps < 1):
            raise ValueError("pattern 'one_to_many' needs out_steps ≥ 1 (the length of the generated sequence)")
        if pattern == "one_to_many" and bidirectional:
            raise ValueError("pattern 'one_to_many' generates left to right; it cannot be bidirectional")
        self.cell, self.pattern, self.out_steps = cell, pattern, out_steps
        self.hidden, self.num_layers, self.directions = hidden, num_layers, 2 if bidirectional else 1
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID) if vocab_size is not None else None
        features = embed_dim if vocab_size is not None else input_size
        if pattern == "one_to_many":
            self.bridge = nn.Linear(features, num_layers * hidden)  # the vector → h₀ of every layer
            self.start = nn.Parameter(torch.zeros(embed_dim))
            self.feedback = nn.Linear(out_features, embed_dim, bias=False)  # E·softmax(z_{t−1})
            features = embed_dim
        self.rnn = make_rnn(cell, features, hidden, num_layers=num_layers, bidirectional=bidirectional,
                            dropout=dropout, nonlinearity=nonlinearity)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * self.directions, out_features)

    def init_state(self, batch_size: int, *, device: torch.device | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """All-zero state [layers·dirs, B, H] ((h, c) for an LSTM), the start of a truncated-BPTT run."""
        h = torch.zeros(self.num_layers * self.directions, batch_size, self.hidden, device=device, dtype=dtype)
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def embed_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids [B, T] → embeddings [B, T, E]; float features pass through."""
        return self.embed(x) if self.embed is not None else x

    def forward_embedded(self, e: torch.Tensor, lengths: torch.Tensor | None = None,
                         state: State | None = None) -> tuple[torch.Tensor, State]:
        """The sequence patterns from already-embedded inputs e [B, T, E] → (logits, final state)."""
        out, state = run_packed(self.rnn, e, lengths, state)
        if self.pattern == "many_to_many":
            return self.head(self.drop(out)), state
        h = top_hidden(state)
        # h_n is each sequence's own last valid step (packing); the backward direction ends at t = 0.
        last = torch.cat([h[-2], h[-1]], dim=-1) if self.directions == 2 else h[-1]
        return self.head(self.drop(last)), state

    def forward_with_state(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                           state: State | None = None) -> tuple[torch.Tensor, State]:
        """(logits, final state) for one chunk; pass ``detach_state(state)`` to the next chunk."""
        if self.pattern in ("one_to_one", "one_to_many"):
            raise ValueError(f"forward_with_state is for sequence inputs, not pattern '{self.pattern}'")
        return self.forward_embedded(self.embed_inputs(x), lengths, state)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.pattern == "one_to_many":
            return self._generate(x)
        if self.pattern == "one_to_one":
            x, lengths = x.unsqueeze(1), None
        elif lengths is None:
            lengths = lengths_from_padding(x)
        return self.forward_embedded(self.embed_inputs(x), lengths)[0]

    def _generate(self, x: torch.Tensor) -> torch.Tensor:
        v = self.embed(x) if self.embed is not None else x
        b = v.shape[0]
        h0 = torch.tanh(self.bridge(v)).view(b, self.num_layers, self.hidden).transpose(0, 1).contiguous()
        state: State = (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0
        step_in = self.start.expand(b, 1, -1)
        steps = []
        for _ in range(self.out_steps):
            out, state = self.rnn(step_in, state)
            logits = self.head(self.drop(out[:, 0]))
            steps.append(logits)
            step_in = self.feedback(logits.softmax(dim=-1)).unsqueeze(1)
        return torch.stack(steps, dim=1)


def early_step_grad_norms(model: RecurrentNet, x: torch.Tensor, y: torch.Tensor, loss_fn,
                          lengths: torch.Tensor | None = None) -> list[float]:
    """‖∂L/∂x_t‖ for t = 0…T−1: the gradient of ``loss_fn(model(x), y)`` w.r.t. the input
    embeddings at each step (norm over batch and features). Vanishing gradients show as norms that
    fall off geometrically towards t = 0 for a loss at the end (compare rnn with lstm/gru at T ≥ 50).
    Parameter .grad fields are left untouched."""
    if model.pattern not in ("many_to_one", "many_to_many"):
        raise ValueError(f"early_step_grad_norms needs a sequence pattern, not '{model.pattern}'")
    e = model.embed_inputs(x).detach().requires_grad_(True)
    logits, _ = model.forward_embedded(e, lengths)
    (grad,) = torch.autograd.grad(loss_fn(logits, y), e)
    return [float(g) for g in grad.transpose(0, 1).flatten(1).norm(dim=1)]
