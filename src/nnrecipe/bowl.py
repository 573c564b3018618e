"""`nnrecipe bowl` and `nnrecipe.bowl(...)`: optimizers on a 2-D quadratic, steps against theory.

The runs and the theory are `nnrecipe.recipe.bowl`, the figure `nnrecipe.report.bowl_plot`. Writes
``DIR/bowl.png`` and ``DIR/bowl.json``: ``{"kappa", "angle", "tol", "optimizers": {name: {"lr",
"momentum", "steps_to_tol", "theory_steps", "theory", "diverged", "final_loss", "grid"}},
"divergence": {"threshold_lr", "lr", "diverged", "steps_run"}}`` (the per-step losses and paths
are drawn, not stored).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nnrecipe.recipe.bowl import bowl_experiment
from nnrecipe.report.bowl_plot import plot_bowl

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
_DRAWN_ONLY = ("losses", "path")


def _summary(result: dict) -> dict:
    runs = {name: {k: v for k, v in run.items() if k not in _DRAWN_ONLY and k != "name"}
            for name, run in result["optimizers"].items()}
    divergence = {k: v for k, v in result["divergence"].items() if k not in _DRAWN_ONLY}
    return {**{k: v for k, v in result.items() if k not in ("optimizers", "divergence")},
            "optimizers": runs, "divergence": divergence}


def bowl(*, kappa: float = 50.0, angle: float = 30.0, tol: float = 1e-6,
         optimizers: str | list[str] = DEFAULT_OPTIMIZERS, lrs: dict[str, float] | None = None,
         max_steps: int | None = None, out: str | Path | None = "bowl") -> dict:
    """Run the optimizers on the bowl; write ``out/bowl.png`` and ``out/bowl.json`` (``out=None``:
    nothing written) and return the JSON content (with ``"png"``, ``"json"`` when written)."""
    names = [n.strip() for n in optimizers.split(",") if n.strip()] if isinstance(optimizers, str) else list(optimizers)
    result = bowl_experiment(kappa=kappa, angle=angle, tol=tol, optimizers=names, lrs=lrs, max_steps=max_steps)
    summary = _summary(result)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        summary["png"] = str(plot_bowl(result, out / "bowl.png"))
        summary["json"] = str(out / "bowl.json")
        tmp = out / ".bowl.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, out / "bowl.json")
    return summary
