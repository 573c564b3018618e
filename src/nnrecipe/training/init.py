"""Weight initialization: `initialize(model, cfg, activation=...)` and the `INITIALIZERS` registry.

Every ``nn.Linear`` / ``nn.Conv{1,2,3}d`` weight W ∈ ℝ^{n_out × n_in(×k…)} is drawn by the named
initializer; n_in = fan-in (inputs × kernel size), n_out = fan-out. Biases are always 0; norm layers
start as the identity (γ = 1, β = 0). The draws are torch's own (``torch.nn.init``):

- ``xavier_uniform``  - Glorot & Bengio 2010: W ~ U(±a), a = g·√(6/(n_in+n_out)).
- ``xavier_normal``   - Glorot & Bengio 2010: W ~ N(0, g²·2/(n_in+n_out)).
  g = ``cfg.gain``, or ``torch.nn.init.calculate_gain(activation)`` (tanh 5/3, ReLU √2, ...).
- ``kaiming_normal``  - He et al. 2015: W ~ N(0, σ²), σ = √(2/((1+a²)·n)), n = n_in (``mode:
  fan_in``, preserves the forward variance) or n_out (``fan_out``, the backward one).
- ``kaiming_uniform`` - He et al. 2015: W ~ U(±√3·σ), same σ.
  a = ``negative_slope`` for leaky_relu, 0 for relu; relu6 and gelu count as relu (both are
  ≈ ReLU where the pre-activations live); tanh/sigmoid use torch's gain for them.
- ``orthogonal``      - Saxe et al. 2014: W = g·Q with Q (semi-)orthogonal, WᵀW = g²I (or WWᵀ
  when n_out < n_in); g as for Xavier.
- ``zeros``           - W = 0. Every unit of a layer then computes the same function and receives
  the same gradient, so the units never become different (the symmetry problem); kept for
  teaching and for the test that shows it.
- ``normal``          - W ~ N(0, ``cfg.std``²), the fixed-scale init of early nets; with std 0.01
  and width 512 each tanh layer shrinks the signal by ≈ 0.01·√512 ≈ 0.23, so deep nets stall.
- ``auto`` (default)  - the paper default for the activation: Kaiming-normal N(0, 2/((1+a²)·n_in))
  for the ReLU family (relu, leaky_relu, relu6, gelu; always fan_in, ``cfg.mode`` is for
  ``kaiming_*``), Xavier-uniform U(±√(6/(n_in+n_out))), gain 1 as in Glorot & Bengio (or
  ``cfg.gain``), for tanh/sigmoid. (Gain 1 lets a tanh signal shrink slowly with depth, to ≈ 0.23×
  after 10 layers of width 512; ``xavier_uniform`` with torch's tanh gain 5/3 keeps ≈ 0.65×.) The head - the last ``nn.Linear``
  in module order, whose outputs are linear logits - gets Xavier-uniform scaled by
  ``HEAD_GAIN`` = 0.1 ("init well": Karpathy 2019, the final layer so the loss starts where it
  should). Its logits have Var = g²·2·n_in/(n_in+n_out)·E[h²] ≈ 0.02·E[h²], so the softmax
  starts uniform and the initial cross-entropy is ln C + ≈ Var/2 (≈ 0.01 above ln C), and a
  regression head starts near 0 (initial MSE ≈ E[y²]). Measured on digits (seeds 0–2) this also
  trained better than gain 1 (test accuracy mean 0.985 vs 0.980).
- ``torch``           - the layer's own ``reset_parameters()``: W and b ~ U(±1/√n_in) (Kaiming-uniform
  with a = √5), no special head; RNN/LSTM/GRU layers too (every weight and bias ~ U(±1/√H), so
  ``gate_bias`` does not apply). The default of the seq:addition task (attention seq2seq): there it
  learned much faster than ``auto`` (exact match 0.29 vs 0.05 after 600 steps, 0.778 vs 0.658 after
  3 epochs; README Results); the tanh attention and bridge layers start with smaller weights.
- ``keep``            - leave every weight as the model was built (a user's own module: its
  constructor's init, or the weights it was given, is the user's choice). The default for
  ``model.name: custom``.
- ``lsuv``            - Mishkin & Matas 2016, "All you need is a good init" (arXiv 2015): start
  orthogonal (g = 1), then with a data batch B visit each Linear/Conv layer in forward order and
  repeat  W ← W / √Var(y)  (y = the layer's output on B, variance over all its entries) until
  |Var(y) − 1| < ``cfg.lsuv_tol`` or ``cfg.lsuv_max_iter`` rounds. Data-driven, so it adapts to
  any activation, norm or architecture. torch has no LSUV; it is written here (forward hooks, no
  grad, the model in eval mode so dropout adds no noise and BatchNorm, with its initial running
  statistics, is the identity). The head is rescaled too (as in
  the paper), so its logits start with unit variance.

- ``metainit`` / ``gradinit`` - draw with ``cfg.base`` (default ``auto``; ``keep`` for a user's own
  weights), then learn one scale per weight tensor on a few training batches of the run's loss
  (`nnrecipe.training.learned_init`: Dauphin & Schoenholz 2019; Zhu et al. 2021). The learning
  needs targets and the loss, so the task runs it after building the model
  (`nnrecipe.training.setup.learn_init`).

Recurrent layers (``nn.RNN``/``LSTM``/``GRU``) follow the usual recipe whatever ``cfg.name`` says:
each gate's block of ``weight_hh`` orthogonal (its repeated application neither blows up nor
vanishes), ``weight_ih`` Xavier-uniform, biases 0 except the LSTM forget gate's input bias 1
(Jozefowicz et al. 2015, ``cfg.gate_bias: one``), so the cell remembers by default.
A forget gate of σ(1) ≈ 0.73 still keeps only 0.73⁵⁹ ≈ 1e-8 of a cell after 60 steps, so a
dependency that long gets no gradient at init. ``cfg.gate_bias: chrono`` (Tallec & Ollivier 2018,
"Can recurrent neural networks warp time?") draws per unit b_f = log(u), u ~ U(1, T_max − 1), and
b_i = −b_f for the LSTM, so unit j forgets with a time constant ≈ u_j steps, spread up to T_max
(``cfg.chrono_max``; None: the input length of the training batches). For the GRU,
h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}, the same draw goes to the update gate's bias b_z.
The vanilla RNN has no gate, so neither applies to it.

Residual blocks: ``zero_init_residual_branches`` (applied when ``cfg.zero_init_residual``) zeroes
the weight of each block's ``residual_last`` module (the norm's γ, or the last conv/linear), so
every block starts as the identity x + 0 (Goyal et al. 2017; He et al. 2019 "Bag of Tricks").
A block opts in by setting ``self.residual_last = <its last norm or conv/linear>``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch
from torch import nn

from nnrecipe.config import InitConfig
from nnrecipe.errors import UserError
from nnrecipe.models.recurrent_init import init_recurrent

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
_RELU_FAMILY = ("relu", "leaky_relu", "relu6", "gelu")
_VAR_FLOOR = 1e-12  # LSUV: an output this flat (a zeroed residual branch, a dead layer) is left alone

WeightInit = Callable[..., None]


def _torch_nonlinearity(activation: str) -> str:
    """relu6 and gelu are ≈ ReLU on the pre-activation range; torch's gain table lacks them."""
    return "relu" if activation in ("relu6", "gelu") else activation


def default_gain(activation: str, *, negative_slope: float = 0.01) -> float:
    """torch.nn.init.calculate_gain for `activation` (relu6/gelu as relu); ValueError if unknown."""
    return nn.init.calculate_gain(_torch_nonlinearity(activation), negative_slope)


def _gain(cfg: InitConfig, activation: str, negative_slope: float) -> float:
    return cfg.gain if cfg.gain is not None else default_gain(activation, negative_slope=negative_slope)


def _kaiming_args(activation: str, negative_slope: float) -> dict:
    nonlinearity = _torch_nonlinearity(activation)
    return {"a": negative_slope if nonlinearity == "leaky_relu" else 0.0, "nonlinearity": nonlinearity}


# --- the registry: fn(weight, *, cfg, activation, negative_slope) fills `weight` in place ---------

def xavier_uniform(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.xavier_uniform_(w, gain=_gain(cfg, activation, negative_slope))


def xavier_normal(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.xavier_normal_(w, gain=_gain(cfg, activation, negative_slope))


def kaiming_normal(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.kaiming_normal_(w, mode=cfg.mode, **_kaiming_args(activation, negative_slope))


def kaiming_uniform(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.kaiming_uniform_(w, mode=cfg.mode, **_kaiming_args(activation, negative_slope))


def orthogonal(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.orthogonal_(w, gain=_gain(cfg, activation, negative_slope))


def zeros(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.zeros_(w)


def normal(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    nn.init.normal_(w, mean=0.0, std=cfg.std)


def torch_default(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    """Never called on a weight: `initialize` calls the layer's own ``reset_parameters`` instead."""
    raise AssertionError("init 'torch' resets whole layers")


def auto(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    if activation in _RELU_FAMILY:
        nn.init.kaiming_normal_(w, mode="fan_in", **_kaiming_args(activation, negative_slope))
    else:  # tanh, sigmoid (and a linear activation): Glorot & Bengio's gain-1 formula
        nn.init.xavier_uniform_(w, gain=cfg.gain if cfg.gain is not None else 1.0)


def lsuv_start(w: torch.Tensor, *, cfg: InitConfig, activation: str, negative_slope: float) -> None:
    """LSUV's pre-initialization (orthonormal, g = 1); `initialize` then rescales with data."""
    nn.init.orthogonal_(w, gain=1.0)


HEAD_GAIN = 0.1  # under `auto`: Xavier-uniform head scaled so the initial logits are ≈ 0

INITIALIZERS: dict[str, WeightInit] = {
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "kaiming_normal": kaiming_normal,
    "kaiming_uniform": kaiming_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
    "normal": normal,
    "auto": auto,
    "lsuv": lsuv_start,
    "torch": torch_default,
}
LEARNED = ("metainit", "gradinit")  # `init.base`'s draw, then `nnrecipe.training.learned_init` on batches

# --- model-level passes ---------------------------------------------------------------------------

# init_recurrent lives with the recurrent models, which call it in their constructors (models sit below training)


@torch.no_grad()
def zero_init_residual_branches(model: nn.Module) -> int:
    """Zero the weight of every ``module.residual_last`` (norm γ or conv/linear weight) so each
    residual block x + F(x) starts as the identity. Returns how many blocks were zeroed."""
    count = 0
    for module in model.modules():
        last = getattr(module, "residual_last", None)
        if last is None:
            continue
        weight = getattr(last, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"{type(module).__name__}.residual_last ({type(last).__name__}) has no weight to zero")
        weight.zero_()
        count += 1
    return count


def _forward_order(model: nn.Module, data: torch.Tensor) -> list[nn.Module]:
    """The Linear/Conv layers in the order the forward pass calls them (each once)."""
    order: list[nn.Module] = []

    def record(module: nn.Module, inputs, output) -> None:
        if module not in order:
            order.append(module)

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, _WEIGHTED)]
    try:
        model(data)
    finally:
        for h in hooks:
            h.remove()
    return order


@torch.no_grad()
def lsuv(model: nn.Module, data: torch.Tensor, *, tol: float, max_iter: int) -> dict[nn.Module, float]:
    """Layer-sequential unit-variance rescaling (Mishkin & Matas); returns each layer's final Var(y).

    Layer by layer in forward order, W ← W / √Var(y) until |Var(y) − 1| < tol (≤ max_iter rounds).
    Earlier layers are fixed by then, so with a zero bias one round usually lands on 1 exactly.
    """
    was_training = model.training
    model.eval()
    variances: dict[nn.Module, float] = {}
    try:
        for layer in _forward_order(model, data):
            out: dict[str, torch.Tensor] = {}
            hook = layer.register_forward_hook(lambda mod, i, o: out.__setitem__("y", o))
            try:
                for _ in range(max_iter):
                    model(data)
                    var = out["y"].float().var().item()
                    if var < _VAR_FLOOR or abs(var - 1.0) < tol:
                        break
                    layer.weight.div_(math.sqrt(var))
                model(data)
                variances[layer] = out["y"].float().var().item()
            finally:
                hook.remove()
    finally:
        model.train(was_training)
    return variances


@torch.no_grad()
def initialize(model: nn.Module, cfg: InitConfig, *, activation: str, negative_slope: float = 0.01,
               data: torch.Tensor | None = None) -> None:
    """Initialize `model` in place as described in the module docstring.

    `activation` is the hidden layers' nonlinearity (it sets gains); `data` is a batch of inputs,
    required by ``lsuv`` only.
    """
    if cfg.name in LEARNED:  # draw with the base; the task then learns the scales with its loss
        if cfg.base in (*LEARNED, "lsuv"):
            raise UserError(f"init.base '{cfg.base}' is not a plain draw", "init.base",
                            "use one of auto, xavier_uniform, kaiming_normal, orthogonal, normal, torch, keep")
        cfg = cfg.model_copy(update={"name": cfg.base})
    if cfg.name == "keep":  # the weights the model came with (the default for a user's own module)
        return
    if cfg.name not in INITIALIZERS:
        match = difflib.get_close_matches(cfg.name, [*INITIALIZERS, *LEARNED], n=1)
        raise UserError(f"unknown initializer '{cfg.name}'", "init.name",
                        f"did you mean '{match[0]}'?" if match else
                        f"choose one of keep, {', '.join([*INITIALIZERS, *LEARNED])}")
    if cfg.name == "lsuv" and data is None:
        raise ValueError("init 'lsuv' needs a data batch: initialize(..., data=X[:batch])")
    default_gain(activation, negative_slope=negative_slope)  # fail early on an unknown activation
    fill = INITIALIZERS[cfg.name]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    head = linears[-1] if linears else None
    for module in model.modules():
        if isinstance(module, _WEIGHTED) and cfg.name == "torch":
            module.reset_parameters()  # torch's own draw, biases included
        elif isinstance(module, _WEIGHTED):
            if cfg.name == "auto" and module is head:
                nn.init.xavier_uniform_(module.weight, gain=HEAD_GAIN)  # small logits: loss starts at ln C
            else:
                fill(module.weight, cfg=cfg, activation=activation, negative_slope=negative_slope)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _NORMS):
            if getattr(module, "weight", None) is not None:
                nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase) and cfg.name == "torch":
            module.reset_parameters()  # every weight and bias ~ U(±1/√H); no gate-bias rule
        elif isinstance(module, nn.RNNBase):
            span = cfg.chrono_max
            if span is None and data is not None and not isinstance(data, (tuple, list)) and data.dim() >= 2:
                span = max(int(data.shape[1]), 3)  # token ids [B, T] or features [B, T, D]
            init_recurrent(module, gate_bias=cfg.gate_bias, chrono_max=span)
    # Zero the residual branches before LSUV, so LSUV calibrates the network as it will start
    # (a zeroed layer's flat output is skipped by the variance floor).
    if cfg.zero_init_residual:
        zero_init_residual_branches(model)
    if cfg.name == "lsuv":
        lsuv(model, data, tol=cfg.lsuv_tol, max_iter=cfg.lsuv_max_iter)
