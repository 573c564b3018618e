"""Speed options of the fit loop: mixed precision, `torch.compile` with an eager fallback, and the
channels_last memory format. All three change how the same computation runs, not what it computes.

Mixed precision (Micikevicius et al. 2018). Forward and loss run under ``torch.autocast``: matmuls
and convolutions in bf16/fp16, reductions and the loss in fp32, weights and optimizer state stay
fp32. bf16 keeps fp32's 8-bit exponent, so gradients cannot underflow and need no scaling (CPU
and CUDA). fp16 has a 5-bit exponent: small gradients flush to zero, so the loss is multiplied by
a scale S before backward and the gradients divided by S before clipping and the step
(``torch.amp.GradScaler``: S halves and the step is skipped when a gradient is Inf/NaN, S doubles
after 2000 good steps). A step the scaler skips is normal at the start of training, not
divergence: with a scaler the loop's NaN guard looks at the loss only. fp16 autocast is a CUDA
feature; on the CPU it is refused (bf16 is the CPU's half type).

`torch.compile` traces the model into fused kernels. It needs a working backend (a C++ compiler
for the CPU, Triton for CUDA) and fails on some models; the first compiled call is wrapped, and
on failure the run continues eagerly with one WARNING on the ``nnrecipe.training.precision``
logger (`nnrecipe fit` prints it on stderr) and ``"compile": "fallback: …"`` in metrics.json. The trainer keeps the original module, so saved weights carry no ``_orig_mod.``
prefix.

channels_last (NHWC) lets cuDNN pick its fastest convolution kernels, notably with tensor cores;
the model's conv weights and every 4-D input batch are put in that layout.

Why hand-written: each piece is a few lines around torch's own ``autocast``, ``GradScaler`` and
``compile``; what is ours is the policy (which device allows what, when to fall back).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable

import torch
from torch import nn

from nnrecipe.errors import UserError
from nnrecipe.training.callbacks import Callback

logger = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision(Callback):
    """Autocast context and (fp16) gradient scaler for one device. ``Precision("fp32", …)`` is a no-op.

    It is also a callback with ``state_dict``/``load_state_dict`` (the scaler's S and growth
    counter), so a checkpoint saves it and a resumed fp16 run continues with the same scale.
    """

    order = 50  # no hooks of its own; a callback only so that checkpoints save its state

    def __init__(self, name: str, device_type: str, *, scaler: torch.amp.GradScaler | None = None):
        if name not in ("fp32", *DTYPES):
            raise UserError(f"unknown precision '{name}'", "train.precision", "use fp32, bf16 or fp16")
        self.name, self.device_type, self.scaler = name, device_type, scaler

    @classmethod
    def for_device(cls, name: str, device: torch.device) -> "Precision":
        """The policy: bf16 anywhere autocast supports it; fp16 on CUDA only, with a GradScaler."""
        if name == "fp16":
            if device.type != "cuda":
                raise UserError(f"fp16 mixed precision needs a CUDA GPU, this run is on {device.type}",
                                "train.precision", "use --precision bf16 (supported on CPU) or fp32")
            return cls(name, device.type, scaler=torch.amp.GradScaler("cuda"))
        if name == "bf16" and device.type == "mps":
            raise UserError("bf16 autocast is not supported on mps", "train.precision", "use fp32 on mps")
        return cls(name, device.type)

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=DTYPES[self.name])

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by S in place (before clipping, so the threshold is in true units)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """optimizer.step(), or the scaler's step (skipped when a gradient is Inf/NaN) and S update."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    # -- callback interface (only the state matters) --
    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def wants_channels_last(setting: str | bool, model: nn.Module, device: torch.device) -> bool:
    """``auto``: on for conv nets on CUDA only (on the CPU NHWC is often slower for small images)."""
    if setting == "auto":
        return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())
    return setting in (True, "true")


def channels_last_forward(forward: Callable) -> Callable:
    """Wrap a ``forward(model, inputs)`` so 4-D input batches are in channels_last layout."""
    def forward_nhwc(model, xb):
        if isinstance(xb, torch.Tensor) and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return forward(model, xb)
    return forward_nhwc


class CompiledForward:
    """``forward(model, inputs)`` through ``torch.compile(model)``, falling back to eager on failure.

    `status` is ``"on"`` while compiled, ``"fallback: <reason>"`` after a failure. `backend` is
    torch.compile's (``"inductor"`` by default; tests pass one that fails).
    """

    def __init__(self, model: nn.Module, forward: Callable, *, backend="inductor"):
        self.forward, self.status = forward, "on"
        self.compiled = None
        try:
            self.compiled = torch.compile(model, backend=backend)
        except Exception as exc:  # noqa: BLE001 — any failure means: train eagerly
            self._fall_back(exc)
        self._checked: set[bool] = set()  # train/eval modes whose first compiled call succeeded

    def _fall_back(self, exc: Exception) -> None:
        root = getattr(exc, "inner_exception", None) or exc.__cause__ or exc  # dynamo wraps the backend's error
        first = (str(root).strip().splitlines() or [""])[0][:200]
        reason = f"{type(root).__name__}: {first}" if first else type(root).__name__
        self.status, self.compiled = f"fallback: {reason}", None
        logger.warning("warning: torch.compile is not usable here, training eagerly (%s)", reason)

    def __call__(self, model: nn.Module, xb):
        if self.compiled is None:
            return self.forward(model, xb)
        if model.training in self._checked:
            return self.forward(self.compiled, xb)
        try:  # the first call per mode compiles: a backend failure shows up here
            out = self.forward(self.compiled, xb)
        except Exception as exc:  # noqa: BLE001
            self._fall_back(exc)
            return self.forward(model, xb)
        self._checked.add(model.training)
        return out


def compile_status(forward) -> str:
    """metrics.json's ``compile``: "off", "on" or "fallback: <reason>"."""
    return forward.status if isinstance(forward, CompiledForward) else "off"
