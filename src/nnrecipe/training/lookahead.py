"""Lookahead (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step back").

Wraps any inner optimizer A (the "fast" one). Slow weights φ start at the parameters θ; after every
k inner steps

    φ ← φ + α·(θ − φ),      θ ← φ

i.e. the slow weights move a fraction α towards where the fast weights explored, and the fast
weights restart from there. This damps the oscillation of the inner optimizer at little cost
(one extra copy of the weights, one interpolation every k steps); the paper's defaults are
k = 5, α = 0.5.

torch has no Lookahead, so it is written here (after the paper's Algorithm 1; timm's
``timm/optim/lookahead.py`` is a similar design). It is a `torch.optim.Optimizer` so it goes
wherever one is expected, but it owns nothing of the update: ``param_groups`` *is* the inner
optimizer's list (writing ``group["lr"]`` sets the inner LR), ``state`` holds only the slow
weights (the inner state is ``lookahead.optimizer.state``), and ``state_dict()`` is
``{"inner": <the inner state_dict>, "lookahead": {k, alpha, step, slow}}``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class Lookahead(torch.optim.Optimizer):
    def __init__(self, optimizer: torch.optim.Optimizer, *, k: int = 5, alpha: float = 0.5):
        if k < 1:
            raise ValueError(f"lookahead k must be >= 1, got {k}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"lookahead alpha must be in (0, 1], got {alpha}")
        self.optimizer = optimizer
        self.k, self.alpha = k, alpha
        self.lookahead_step = 0  # inner steps taken; the slow weights sync when it hits a multiple of k
        # The base class validates the groups and sets up hooks; add_param_group appends the very
        # same dicts, and the list is then replaced by the inner's own, so the two never diverge.
        super().__init__(optimizer.param_groups, optimizer.defaults)
        self.param_groups = optimizer.param_groups

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        for p in self._params():
            if "slow" not in self.state[p]:  # φ₀ = θ₀, taken just before the first update
                self.state[p]["slow"] = p.detach().clone()
        loss = self.optimizer.step(closure)
        self.lookahead_step += 1
        if self.lookahead_step % self.k == 0:
            for p in self._params():
                slow = self.state[p]["slow"]
                slow.add_(p.detach() - slow, alpha=self.alpha)  # φ ← φ + α(θ − φ)
                p.copy_(slow)  # θ ← φ
        return loss

    def state_dict(self) -> dict:
        slow = {i: self.state[p]["slow"].clone() for i, p in enumerate(self._params()) if "slow" in self.state[p]}
        return {"inner": self.optimizer.state_dict(),
                "lookahead": {"k": self.k, "alpha": self.alpha, "step": self.lookahead_step, "slow": slow}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.optimizer.load_state_dict(state_dict["inner"])
        self.param_groups = self.optimizer.param_groups  # the inner load replaced its list
        saved = state_dict["lookahead"]
        self.k, self.alpha, self.lookahead_step = saved["k"], saved["alpha"], saved["step"]
        self.state.clear()
        for i, p in enumerate(self._params()):
            if i in saved["slow"]:
                self.state[p]["slow"] = saved["slow"][i].detach().to(device=p.device, dtype=p.dtype, copy=True)

    def __getstate__(self) -> dict:
        # The base class pickles only defaults/state/param_groups; keep the wrapper's own fields
        # (copy.deepcopy and pickle preserve the shared param_groups list).
        return {**super().__getstate__(), "optimizer": self.optimizer, "k": self.k, "alpha": self.alpha,
                "lookahead_step": self.lookahead_step}

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha}, {self.optimizer!r})"
