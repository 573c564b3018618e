"""Training-health monitor: sampled per-layer statistics and early warnings (Karpathy's checks).

Every ``every`` optimizer steps s (s % every == 0, s counted like ``trainer.step`` after the update)
one row per layer is recorded:

- ``kind="activation"``, for each activation module (ReLU, LeakyReLU, GELU, Tanh, Sigmoid, ReLU6,
  ELU, SiLU), from its training-mode output a on step s: ``act_mean``, ``act_std`` (population) and
  ``dead_fraction`` = the fraction of units (features; channels of a conv map, i.e. dim 1) that are
  exactly 0 for every example in the batch. A ReLU unit zero on the whole batch gets no gradient:
  it is dead (Karpathy, "A Recipe for Training Neural Networks", 2019; CS231n "Babysitting the
  learning process"). Half of a healthy ReLU layer's *entries* are 0, so entries are not counted.
- ``kind="weight"``, for each ``nn.Linear`` / ``nn.Conv*`` weight W: ``grad_norm`` = ‖∇W‖₂ of the
  accumulated gradient *before* clipping (read in a post-accumulate-grad hook, as the trainer's
  own grad_norm is pre-clip) and ``update_ratio`` = ‖W_after − W_before‖₂ / ‖W_before‖₂ across
  the optimizer step (whatever the optimizer, momentum, weight decay and clipping did). Around
  1e-3 is healthy; ≪1e-3 the LR is too low, ≫1e-3 too high (CS231n).

Warnings (once per layer and problem; kept in ``self.warnings``, and with ``log=True`` logged at
WARNING on the ``nnrecipe.recipe.health`` logger, which `nnrecipe fit` prints on stderr: the library
reports through `logging`, never to the console itself, see `nnrecipe.cli`): vanishing gradient
(‖∇W‖ < 1e-3 × the output layer's, the last ``nn.Linear``), exploding gradient (‖∇W‖ non-finite,
or > 100× its previous sampled value), dead units (dead_fraction > 50 %), and clipping most steps:
more than half of an epoch's steps clipped (the epoch's ``clip_fraction``) by a fixed global-norm τ
(``clip.name=norm``), so τ is small next to the typical gradient and clipping has become a smaller
learning rate with a normalized gradient rather than a guard against rare spikes. Epochs in the
first quarter of the planned epochs are not counted: right after initialization the gradient is
large and clipping it is what clipping is for (the default digits fit clips 90–100 % of epochs
1–4's steps and under 10 % from epoch 8 on). AutoClip is not checked: with percentile p it
clips about 1 − p/100 of the steps by construction.

Cost: between samples nothing is computed and nothing syncs. The forward hooks return on their
first check (a flag), gradient hooks exist only for the one backward being sampled, and the
optimizer step hooks count steps. A sampled step clones the tracked weights once and reads all its
scalars with a single ``.tolist()`` (one host–device sync).
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import torch
from torch import nn

from nnrecipe.training.callbacks import Callback

ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.ReLU6, nn.ELU, nn.SiLU)
WEIGHT_TYPES = (nn.Linear, nn.modules.conv._ConvNd)
COLUMNS = ("step", "layer", "kind", "act_mean", "act_std", "dead_fraction", "grad_norm", "update_ratio")

VANISHING_RATIO = 1e-3  # ‖∇W‖ below this fraction of the output layer's
EXPLODING_JUMP = 100.0  # ‖∇W‖ above this multiple of its previous sampled value
DEAD_LIMIT = 0.5  # fraction of units zero on the whole batch

logger = logging.getLogger(__name__)

_FIXES = {
    "vanishing gradient": "use Kaiming/Xavier init, ReLU-family activations, normalization or residual connections",
    "exploding gradient": "lower the learning rate or enable gradient clipping (clip.name=norm)",
    "dead units": "lower the learning rate, use leaky_relu/gelu, or check the init and biases",
    "clipping most steps": "raise clip.threshold, or use clip.name=autoclip (its τ follows the gradient norms)",
}
CLIPPED_LIMIT = 0.5  # fraction of an epoch's steps clipped
CLIP_TRANSIENT = 0.25  # share of the planned epochs whose clipping is not checked


def _activation_stats(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, population std, fraction of units zero for the whole batch), as 0-dim tensors."""
    x = output.detach().float()
    nonzero = x.ne(0)
    if x.dim() >= 2:  # units along dim 1: features of (N, F), channels of (N, C, ...)
        alive = nonzero.transpose(0, 1).reshape(x.shape[1], -1).any(dim=1)
    else:
        alive = nonzero.reshape(1, -1).any(dim=1)
    return x.mean(), x.std(correction=0), 1.0 - alive.float().mean()


def _row(step: int, layer: str, kind: str, **values) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(step=step, layer=layer, kind=kind, **values)
    return row


class HealthMonitor(Callback):
    """Sampled per-layer activation/gradient/update statistics with warnings (see module docstring)."""

    order = 20

    def state_dict(self) -> dict:
        """What a resumed run needs: exactly the fields the later warnings depend on."""
        return {"rows": self.rows, "warnings": self.warnings, "warned": sorted(list(w) for w in self._warned),
                "prev_grad": self._prev_grad, "step": self._step}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict` after ``on_fit_begin`` has run (nnrecipe.training.checkpoint)."""
        self.rows, self.warnings = [dict(r) for r in state["rows"]], list(state["warnings"])
        self._warned = {tuple(w) for w in state["warned"]}
        self._prev_grad, self._step = dict(state["prev_grad"]), int(state["step"])
        self._disarm()  # on_fit_begin armed (or not) for trainer.step; the monitor counts its own steps
        if (self._step + 1) % self.every == 0:
            self._arm()

    def __init__(self, *, every: int = 50, log: bool = True):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.every = every
        self.log = log  # False: warnings are only collected (fit without progress)
        self.rows: list[dict] = []
        self.warnings: list[str] = []
        self._warned: set[tuple[str, str]] = set()
        self._prev_grad: dict[str, float] = {}
        self._layers: list[tuple[str, str, nn.Module]] = []  # (name, kind, module), module order
        self._weights: list[tuple[str, nn.Parameter]] = []
        self._output: str | None = None
        self._handles: list = []  # forward hooks + optimizer step hooks, for the whole fit
        self._grad_handles: list = []  # post-accumulate-grad hooks, for one sampled backward
        self._armed = False
        self._acts: dict[str, tuple[torch.Tensor, ...]] = {}
        self._grads: dict[str, torch.Tensor] = {}
        self._before: list[torch.Tensor] | None = None
        self._step = 0
        self._epochs = 0  # planned epochs of the fit

    # -- callback hooks -------------------------------------------------------------------------

    def on_fit_begin(self, trainer, logs):
        self._epochs = logs.get("epochs", 0)
        self._remove_hooks()
        self._step = trainer.step
        self._layers, self._weights, seen = [], [], set()
        for name, module in trainer.model.named_modules():
            if isinstance(module, WEIGHT_TYPES) and module.weight.requires_grad and id(module.weight) not in seen:
                seen.add(id(module.weight))  # a tied weight is tracked once, under its first name
                self._layers.append((name, "weight", module))
                self._weights.append((name, module.weight))
            elif isinstance(module, ACTIVATION_TYPES):
                self._layers.append((name, "activation", module))
                self._handles.append(module.register_forward_hook(self._activation_hook(name)))
        linears = [name for name, kind, m in self._layers if kind == "weight" and isinstance(m, nn.Linear)]
        tracked = [name for name, _ in self._weights]
        self._output = (linears or tracked or [None])[-1]
        self._handles.append(trainer.optimizer.register_step_pre_hook(self._pre_step))
        self._handles.append(trainer.optimizer.register_step_post_hook(self._post_step))
        if (self._step + 1) % self.every == 0:
            self._arm()

    def on_epoch_end(self, trainer, logs):
        clipped = logs.get("clip_fraction")
        transient = logs["epoch"] <= CLIP_TRANSIENT * self._epochs
        if trainer.clip_mode == "norm" and clipped is not None and clipped > CLIPPED_LIMIT and not transient:
            self._warn("clipping most steps", trainer.step, "(all parameters)",
                       f"{clipped:.0%} of epoch {logs['epoch']}'s steps had ‖g‖ above the clipping threshold")

    def on_fit_end(self, trainer, logs):
        if self._grads or self._acts:
            # A backward ran but its step did not (the trainer's NaN/Inf guard raised before the
            # update): record what was seen, so the non-finite layer shows up in the rows.
            self._record(self._step + 1, stepped=False)
        self._remove_hooks()
        self._disarm()

    # -- hooks ----------------------------------------------------------------------------------

    def _activation_hook(self, name: str):
        def hook(module, inputs, output):
            if not self._armed:  # every unsampled step ends here
                return
            if module.training and name not in self._acts and isinstance(output, torch.Tensor):
                self._acts[name] = _activation_stats(output)
        return hook

    def _grad_hook(self, name: str):
        def hook(param):
            # A new 0-dim tensor: in-place clipping of param.grad afterwards does not change it.
            self._grads[name] = torch.linalg.vector_norm(param.grad.detach())
        return hook

    def _pre_step(self, optimizer, args, kwargs):
        if not self._armed:
            return
        for handle in self._grad_handles:
            handle.remove()
        self._grad_handles = []
        self._before = [p.detach().clone() for _, p in self._weights]

    def _post_step(self, optimizer, args, kwargs):
        self._step += 1
        if self._armed:
            self._record(self._step, stepped=True)
            self._disarm()
        if (self._step + 1) % self.every == 0:  # the next forward/backward is a sampled step
            self._arm()

    def _arm(self) -> None:
        self._armed = True
        self._grad_handles = [p.register_post_accumulate_grad_hook(self._grad_hook(name))
                              for name, p in self._weights]

    def _disarm(self) -> None:
        self._armed = False
        for handle in self._grad_handles:
            handle.remove()
        self._grad_handles, self._acts, self._grads, self._before = [], {}, {}, None

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- recording and checks -------------------------------------------------------------------

    @torch.no_grad()
    def _record(self, step: int, *, stepped: bool) -> None:
        scalars: list[torch.Tensor] = []
        for i, (name, p) in enumerate(self._weights):
            grad = self._grads.get(name)
            scalars.append(grad if grad is not None else torch.full((), math.nan, device=p.device))
            if stepped and self._before is not None:
                before = self._before[i]
                scalars += [torch.linalg.vector_norm(p.detach() - before), torch.linalg.vector_norm(before)]
            else:
                scalars += [torch.full((), math.nan, device=p.device)] * 2
        act_names = list(self._acts)
        for name in act_names:
            scalars += list(self._acts[name])
        if not scalars:
            return
        device = scalars[0].device
        values = iter(torch.stack([s.float().to(device) for s in scalars]).tolist())  # the one sync
        weights = {}
        for name, _ in self._weights:
            grad, delta, norm = next(values), next(values), next(values)
            ratio = delta / norm if stepped and norm > 0 and math.isfinite(norm) else None
            has_grad = name in self._grads
            weights[name] = (grad if has_grad else None, ratio)
        acts = {name: (next(values), next(values), next(values)) for name in act_names}

        for name, kind, module in self._layers:
            if kind == "weight":
                grad, ratio = weights[name]
                self.rows.append(_row(step, name, kind, grad_norm=grad, update_ratio=ratio))
            elif name in acts:
                mean, std, dead = acts[name]
                self.rows.append(_row(step, name, kind, act_mean=mean, act_std=std, dead_fraction=dead))
                if dead > DEAD_LIMIT:
                    self._warn("dead units", step, name,
                               f"{dead:.0%} of {type(module).__name__} units output 0 for the whole batch")
        self._check_gradients(step, {name: grad for name, (grad, _) in weights.items() if grad is not None})

    def _check_gradients(self, step: int, grads: dict[str, float]) -> None:
        out = grads.get(self._output)
        for name, grad in grads.items():
            prev = self._prev_grad.get(name)
            if not math.isfinite(grad):
                self._warn("exploding gradient", step, name, f"grad norm {grad}")
                continue
            if prev is not None and prev > 0 and grad > EXPLODING_JUMP * prev:
                self._warn("exploding gradient", step, name,
                           f"grad norm {grad:.2e}, {grad / prev:.0f}x its previous sampled value {prev:.2e}")
            if (name != self._output and out is not None and math.isfinite(out) and out > 0
                    and grad < VANISHING_RATIO * out):
                self._warn("vanishing gradient", step, name,
                           f"grad norm {grad:.2e} = {grad / out:.1e} x the output layer's {out:.2e}")
            self._prev_grad[name] = grad

    def _warn(self, what: str, step: int, layer: str, value: str) -> None:
        if (layer, what) in self._warned:
            return
        self._warned.add((layer, what))
        msg = f"warning: {what} at step {step} in layer {layer} ({value}; {_FIXES[what]})"
        self.warnings.append(msg)
        if self.log:
            logger.warning(msg)


def write_health_csv(rows: list[dict], path: str | Path) -> None:
    """One line per row in `COLUMNS` order; empty cells where a statistic does not apply."""
    with Path(path).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
