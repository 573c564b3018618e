"""``train.curvature_every: N``: the sharpness λmax and the trace of the training loss's Hessian,
measured during `fit` at the end of every N-th epoch, into history.csv (``lambda_max``,
``hessian_trace``; empty on the other epochs).

On a fixed sample (`ROWS` training rows drawn once with the fit's seed, so every measurement sees
the same loss) and with the trainer's own loss function: λmax from a `STEPS`-step Lanczos run and
the trace from `PROBES` Hutchinson probes (`nnrecipe.recipe.curvature.sharpness`), STEPS + PROBES
Hessian-vector products per measurement. The probes come from their own generator and the model is
measured in eval mode, so neither the global RNG nor batch-norm statistics change: a resumed fit
stays the fit that was not interrupted.

The report draws λmax next to the edge of stability 2/η (Cohen et al. 2021, "Gradient descent on
neural networks typically occurs at the edge of stability"): gradient descent on a quadratic
diverges when λmax > 2/η; full-batch GD drives λmax up to that line and hovers there.
"""

from __future__ import annotations

import torch

from nnrecipe.recipe.curvature import sharpness
from nnrecipe.training.callbacks import Callback
from nnrecipe.training.loop import num_rows, take

ROWS, STEPS, PROBES = 256, 20, 10
COLUMNS = ("lambda_max", "hessian_trace")


class CurvatureTracker(Callback):
    order = 4  # before History (5) copies the epoch's row

    def __init__(self, X, y: torch.Tensor, *, every: int, seed: int = 0, rows: int = ROWS):
        first = X[0] if isinstance(X, tuple) else X
        idx = torch.randperm(num_rows(X), generator=torch.Generator().manual_seed(seed))[:rows]
        self.X, self.y = take(X, idx.to(first.device)), y[idx.to(y.device)]
        self.every, self.seed = every, seed
        self.hvps = 0

    def on_epoch_end(self, trainer, logs):
        logs["lambda_max"] = logs["hessian_trace"] = None
        if logs["epoch"] % self.every:
            return
        model = getattr(trainer.model, "module", trainer.model)  # DDP holds the module
        s = sharpness(model, trainer.loss_fn, self.X, self.y, steps=STEPS, probes=PROBES,
                      seed=self.seed + logs["epoch"])
        logs["lambda_max"], logs["hessian_trace"] = s["lambda_max"], s["trace"]
        self.hvps += s["hvps"]
