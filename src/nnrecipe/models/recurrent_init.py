"""The recurrent-layer init of `nnrecipe.training.init` (see its docstring for the formulas and the
papers): orthogonal W_hh gate blocks, Xavier W_ih, forget-gate bias 1 or chrono (Tallec & Ollivier
2018). Kept in models/ because the recurrent models apply it in their constructors, and models
sit below training in the layers; `nnrecipe.training.init` re-exports it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GATE_BIASES", "init_recurrent"]

GATE_BIASES = ("one", "chrono")


@torch.no_grad()
def init_recurrent(module: nn.RNNBase, *, gate_bias: str = "one", chrono_max: int | None = None) -> None:
    """weight_hh: orthogonal per gate block; weight_ih (and LSTM projections): Xavier-uniform;
    biases 0, except (gate orders: LSTM i, f, g, o; GRU r, z, n; in bias_ih)
    ``one``: LSTM b_f = 1;  ``chrono``: LSTM b_f = log(u), b_i = −b_f; GRU b_z = log(u),
    u ~ U(1, chrono_max − 1) per unit."""
    if gate_bias not in GATE_BIASES:
        raise ValueError(f"unknown gate_bias '{gate_bias}'; choose one of {', '.join(GATE_BIASES)}")
    if gate_bias == "chrono" and (chrono_max is None or chrono_max < 3):
        raise ValueError(f"chrono init needs chrono_max >= 3 (the longest dependency), got {chrono_max}")
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    for name, p in module.named_parameters():
        if name.startswith("weight_hh"):
            for block in p.chunk(gates, dim=0):
                nn.init.orthogonal_(block)
        elif name.startswith("weight"):
            nn.init.xavier_uniform_(p)
        else:
            nn.init.zeros_(p)
            if not name.startswith("bias_ih") or module.mode not in ("LSTM", "GRU"):
                continue
            blocks = p.chunk(gates, dim=0)
            if gate_bias == "one":
                if module.mode == "LSTM":
                    blocks[1].fill_(1.0)
                continue
            timescale = torch.log(torch.empty_like(blocks[1]).uniform_(1.0, chrono_max - 1.0))
            blocks[1].copy_(timescale)  # LSTM forget gate f / GRU update gate z
            if module.mode == "LSTM":
                blocks[0].copy_(-timescale)  # input gate: write little where the cell keeps long
