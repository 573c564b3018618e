"""Parameter-efficient fine-tuning (PEFT): train a few new tensors on top of a frozen base model.

- LoRA (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models"): a frozen weight W
  (a Linear's d×k matrix, or a Conv2d kernel flattened to C_out × C_in·k_h·k_w) is used as

      W' = W + (α/r)·B A,   A ∈ R^{r×k} Kaiming-uniform (a = √5, nn.Linear's default, as in the
                            paper's code and the `peft` library), B ∈ R^{d×r} zero,

  so training starts exactly from the base model; only A and B train. A convolution applies A as a
  k_h×k_w conv to r channels and B as a 1×1 conv (the `peft` library's layout), so x ↦ Wx + (α/r)B(Ax)
  never builds the d×k update. ``merge()`` folds (α/r)BA into W (inference at the base model's cost),
  ``unmerge()`` takes it out again.
- Adapters (Houlsby et al. 2019): after a chosen layer f, h = f(x), y = h + U·GELU(D·h) with a
  bottleneck D: d → m, U: m → d (a 1×1 conv pair after a Conv2d). U starts at zero, so the adapted
  model is the base model until U trains.
- Prompt tuning (Lester et al. 2021; for ViT, Jia et al. 2022 "VPT-shallow"): P learned vectors
  p_1..p_P (init N(0, 0.02²), like the models' CLS token) join a transformer classifier's input
  sequence after the embeddings and positions are added, so every real token keeps its position:
  [CLS?, p_1..p_P, x_1..x_T]. Prompts are never padding (every token may attend to them); a mean
  pool averages the real tokens only (prompts excluded), a CLS pool still reads position 0.

Everything in the base is frozen; the head trains too when it is new (the classes differ from the
base run's). `apply_peft` returns the model (the prompt wrapper is a new top-level module) and the
names of the wrapped layers; `setup_peft` is the `fit` path: checks against the transfer report,
parameter counts, the base model's SHA-256, and the LR scales (the new tensors train at the full LR,
like a new head). `load_peft_model` rebuilds base + adapters for `nnrecipe.load`.

Hand-written: the `peft` library would add a large dependency and wraps Hugging Face models; the
three methods are a few lines each here and work on this package's own models.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from nnrecipe.config import Config, PeftConfig
from nnrecipe.errors import UserError
from nnrecipe.models import build_model
from nnrecipe.models.transformer import TransformerClassifier, _key_padding
from nnrecipe.models.vit import ViT
from nnrecipe.training.transfer import load_pretrained

ADAPTER_FILE = "adapter.safetensors"
_LAYERS = (nn.Linear, nn.Conv2d)


class LoRA(nn.Module):
    """A frozen nn.Linear or nn.Conv2d (``base``) plus the low-rank update (α/r)·B A."""

    def __init__(self, base: nn.Linear | nn.Conv2d, *, rank: int, alpha: float):
        super().__init__()
        self.base, self.rank, self.alpha, self.scaling = base, rank, alpha, alpha / rank
        w = base.weight
        fan_in = w[0].numel()  # k = in_features, or C_in·k_h·k_w for a conv
        self.lora_A = nn.Parameter(torch.empty(rank, fan_in, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(w.shape[0], rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """(α/r)·B A, shaped like the base weight."""
        return (self.lora_B @ self.lora_A).view_as(self.base.weight) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        if isinstance(self.base, nn.Conv2d):
            b = self.base
            a = self.lora_A.view(self.rank, *b.weight.shape[1:])
            z = F.conv2d(x, a, None, b.stride, b.padding, b.dilation)
            return out + F.conv2d(z, self.lora_B[:, :, None, None]) * self.scaling
        return out + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """W ← W + (α/r)BA; the forward then uses W alone."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← W − (α/r)BA, the inverse of `merge`."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


class Adapter(nn.Module):
    """h = base(x); h + U·GELU(D·h): a bottleneck residual after a Linear (or Conv2d, with 1×1 convs)."""

    def __init__(self, base: nn.Linear | nn.Conv2d, *, hidden: int):
        super().__init__()
        self.base = base
        conv = isinstance(base, nn.Conv2d)
        width = base.out_channels if conv else base.out_features
        w = base.weight
        make = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.down = make(width, hidden).to(device=w.device, dtype=w.dtype)
        self.up = make(hidden, width).to(device=w.device, dtype=w.dtype)
        self.act = nn.GELU()
        nn.init.zeros_(self.up.weight)  # U = 0: the adapted layer starts as the base layer
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)
        return h + self.up(self.act(self.down(h)))


class PromptTuning(nn.Module):
    """A TransformerClassifier or ViT (``model``, frozen) with P learned prompt vectors in its input."""

    def __init__(self, model: TransformerClassifier | ViT, *, tokens: int):
        super().__init__()
        self.model = model
        dim = model.head.in_features
        w = model.head.weight
        self.prompt = nn.Parameter(torch.randn(1, tokens, dim, device=w.device, dtype=w.dtype) * 0.02)

    def _insert(self, h: torch.Tensor, first: int) -> torch.Tensor:
        """[h[:, :first]; prompts; h[:, first:]] (after a CLS token when `first` is 1)."""
        p = self.prompt.expand(h.shape[0], -1, -1).to(h.dtype)
        return torch.cat([h[:, :first], p, h[:, first:]], dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        m = self.model
        if isinstance(m, ViT):
            patches = m.patch_embed(x).flatten(2).transpose(1, 2)
            z = torch.cat([m.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + m.positions
            z = m.drop(self._insert(z, 1))
            for block in m.blocks:
                z, _ = block(z)
            return m.head(m.norm(z)[:, 0])
        pad = _key_padding(x, lengths)
        h = m.embed(x)
        first = 0
        if m.cls is not None:
            h = torch.cat([m.cls.expand(h.shape[0], -1, -1).to(h.dtype), h], dim=1)
            pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1) if pad is not None else None
            first = 1
        h = m.drop(self._insert(m.positions(h), first))  # real tokens keep their positions
        n = self.prompt.shape[1]
        padded = pad is not None
        if not padded:
            pad = torch.zeros(h.shape[0], h.shape[1] - n, dtype=torch.bool, device=h.device)
        # prompts are never padding: every token may attend to them
        mask = torch.cat([pad[:, :first], pad.new_zeros(pad.shape[0], n), pad[:, first:]], dim=1)
        for block in m.blocks:
            h, _ = block(h, key_padding_mask=mask if padded else None)
        h = m.norm(h)
        if m.cls is not None:
            return m.head(h[:, 0])
        tokens, valid = h[:, first + n:], (~pad[:, first:]).unsqueeze(-1).to(h.dtype)  # real tokens only
        return m.head((tokens * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0))


def _matches(name: str, pattern: str) -> bool:
    """A glob (``*``, ``?``, ``[``) matches the whole module name; anything else is a substring."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def find_targets(model: nn.Module, method: str, patterns=()) -> list[str]:
    """Names of the layers to wrap: those matching `patterns`, or by default every nn.Linear (and,
    for LoRA, every ungrouped nn.Conv2d) except the head."""
    layers = {n: m for n, m in model.named_modules() if isinstance(m, _LAYERS) and n}
    if not patterns:
        kinds = _LAYERS if method == "lora" else (nn.Linear,)
        names = [n for n, m in layers.items() if isinstance(m, kinds) and n != "head" and not n.startswith("head.")
                 and getattr(m, "groups", 1) == 1]
        if not names:
            raise UserError(f"this model has no layers {method} wraps by default", "peft.targets",
                            f"name layers with --peft-targets, e.g. {', '.join(list(layers)[:3])}")
        return names
    names = []
    for pattern in patterns:
        hits = [n for n in layers if _matches(n, pattern)]
        if not hits:
            raise UserError(f"no Linear/Conv2d layer matches '{pattern}'", "peft.targets",
                            f"use a name or glob of: {', '.join(list(layers)[:8])}{' ...' if len(layers) > 8 else ''}")
        names += [n for n in hits if n not in names]
    bad = [n for n in names
           if getattr(layers[n], "groups", 1) != 1 or getattr(layers[n], "padding_mode", "zeros") != "zeros"]
    if bad:
        raise UserError(f"cannot wrap grouped or non-zero-padded convolutions: {', '.join(bad[:4])}", "peft.targets",
                        "target ungrouped layers (depthwise convolutions have few weights to adapt anyway)")
    return names


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def apply_peft(model: nn.Module, cfg: PeftConfig, *, train_head: bool = False,
               modules: list[str] | None = None) -> tuple[nn.Module, list[str]]:
    """Freeze `model` and add the trainable tensors of ``cfg.method``; returns (model, wrapped layer
    names). `train_head`: the head stays trainable (it is new). `modules`: exact layer names to wrap
    (a saved run's), instead of resolving ``cfg.targets``."""
    head = set(map(id, model.head.parameters())) if train_head and hasattr(model, "head") else set()
    for p in model.parameters():
        p.requires_grad_(id(p) in head)
    if cfg.method == "prompt":
        if not isinstance(model, (TransformerClassifier, ViT)):
            raise UserError(f"prompt tuning needs a transformer classifier or ViT, not {type(model).__name__}",
                            "peft.method", "use --model vit (or transformer), or --peft lora|adapter")
        return PromptTuning(model, tokens=cfg.prompt_tokens), []
    names = modules if modules is not None else find_targets(model, cfg.method, cfg.targets)
    for name in names:
        layer = model.get_submodule(name)
        new = (LoRA(layer, rank=cfg.rank, alpha=cfg.alpha) if cfg.method == "lora"
               else Adapter(layer, hidden=cfg.adapter_hidden))
        _replace(model, name, new)
    return model, list(names)


def merge_lora(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, LoRA):
            m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, LoRA):
            m.unmerge()


def parameter_counts(model: nn.Module) -> dict:
    """{"trainable", "total", "trainable_percent"}, total counting the new tensors too (as `peft`'s
    print_trainable_parameters does)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "trainable_percent": 100.0 * trainable / max(total, 1)}


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a PEFT run saves: its trainable parameters (adapters, prompts, a new head)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _weights_file(source: str | Path) -> Path:
    path = Path(source)
    return path / "model.safetensors" if path.is_dir() else path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def setup_peft(model: nn.Module, cfg: Config, transfer: dict | None, lr_scales: dict | None):
    """The `fit` path: (model, report or None, lr_scales). The report goes to metrics.json and
    model.json (``peft``); every trainable tensor trains at the full LR (scale 1/lr_factor)."""
    p = cfg.peft
    if p.method == "none":
        return model, None, lr_scales
    if transfer is None:
        raise UserError(f"peft.method={p.method} fine-tunes a base model", "peft.method",
                        "pass --init-from BASE_RUN_DIR (or a .safetensors file)")
    if cfg.transfer.freeze or cfg.transfer.discriminative != 1.0:
        raise UserError("PEFT freezes the base itself", "transfer.freeze/transfer.discriminative",
                        "drop --freeze/--discriminative-lr when using --peft")
    foreign = [s for s in transfer["skipped"] if not s.startswith("head.")]
    foreign += [f"{n} (not in the base)" for n in transfer["new"] if not n.startswith("head.")]
    if foreign:
        raise UserError(f"the base model differs from this one: {', '.join(foreign[:3])}", "transfer.init_from",
                        "use the base run's model settings, e.g. --config BASE_RUN/config.yaml")
    new_head = any(n.startswith("head.") for n in transfer["new"])
    model, names = apply_peft(model, p, train_head=new_head)
    weights = _weights_file(cfg.transfer.init_from)
    report = {"method": p.method, "rank": p.rank, "alpha": p.alpha, "targets": list(p.targets), "modules": names,
              "adapter_hidden": p.adapter_hidden, "prompt_tokens": p.prompt_tokens, "new_head": new_head,
              **parameter_counts(model), "base": str(Path(cfg.transfer.init_from).resolve()),
              "base_sha256": sha256_file(weights)}
    scales = {id(q): 1.0 / cfg.transfer.lr_factor for q in model.parameters() if q.requires_grad}
    return model, report, scales


def load_peft_model(info: dict, run_dir: Path) -> nn.Module:
    """Base weights (hash-checked) + the run's adapter tensors → the fine-tuned model."""
    spec = info["peft"]
    weights = _weights_file(spec["base"])
    fix = "restore the base run the adapters were trained on, or re-run `nnrecipe fit --peft`"
    if not weights.is_file():
        raise UserError(f"base model not found: {weights}", str(run_dir / "model.json"), fix)
    if sha256_file(weights) != spec["base_sha256"]:
        raise UserError("the base model changed since the adapters were trained (SHA-256 differs)", str(weights), fix)
    state, _ = load_pretrained(spec["base"])
    if spec.get("new_head"):
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    model = build_model(info["architecture"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not (spec.get("new_head") and k.startswith("head.")) for k in missing):
        raise UserError("the base weights do not fit this model", str(weights), fix)
    cfg = PeftConfig(**{k: spec[k] for k in ("method", "rank", "alpha", "adapter_hidden", "prompt_tokens")})
    model, _ = apply_peft(model, cfg, train_head=bool(spec.get("new_head")), modules=spec["modules"])
    path = run_dir / ADAPTER_FILE
    try:
        adapters = load_file(str(path))
    except FileNotFoundError:
        raise UserError(f"missing {ADAPTER_FILE}", str(run_dir), "re-run `nnrecipe fit --peft`") from None
    except (SafetensorError, OSError) as exc:
        raise UserError(f"unreadable {ADAPTER_FILE} ({type(exc).__name__})", str(path),
                        "re-run `nnrecipe fit --peft`") from None
    if set(adapters) != set(adapter_state_dict(model)):
        raise UserError(f"{ADAPTER_FILE} does not match the adapters in model.json", str(path),
                        "re-run `nnrecipe fit --peft`")
    model.load_state_dict(adapters, strict=False)
    return model.eval()
