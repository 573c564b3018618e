"""A run directory and the trained model inside it: the contract between stages.

``model.safetensors`` holds the weights (safetensors: no pickle, no code execution on load);
``model.json`` holds everything else needed to predict: architecture, preprocessing statistics,
class names, temperature, feature names. ``Run`` is what ``nnrecipe.fit`` returns and
``nnrecipe.load`` reads back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nnrecipe.data import Standardizer, TargetScaler
from nnrecipe.errors import UserError
from nnrecipe.models import build_model
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.training.loop import predict_logits

MODEL_FORMAT = 1


@dataclass
class Run:
    dir: Path | None
    model: torch.nn.Module
    info: dict  # the content of model.json
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def class_names(self) -> list[str] | None:
        return self.info.get("class_names")

    @property
    def feature_names(self) -> list[str]:
        return self.info["feature_names"]

    @property
    def temperature(self) -> float:
        return float(self.info.get("temperature", 1.0))

    def _inputs(self, X) -> torch.Tensor:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            got = X.shape[1] if X.ndim == 2 else f"an array of shape {X.shape}"
            raise UserError(f"expected {len(self.feature_names)} feature columns, got {got}", "predict input",
                            "pass rows with the training features, in the training order")
        Z = Standardizer.from_dict(self.info["standardizer"]).transform(X)
        device = next(self.model.parameters()).device
        return torch.as_tensor(Z, dtype=torch.float32, device=device)

    def logits(self, X) -> torch.Tensor:
        return predict_logits(self.model, self._inputs(X)).cpu()

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities softmax(z/T), shape [N, C]."""
        if self.task != "classification":
            raise UserError("predict_proba needs a classification run", str(self.dir), "use predict()")
        return apply_temperature(self.logits(X).double(), self.temperature).numpy()

    def predict(self, X) -> np.ndarray:
        """Class names (classification) or targets in original units (regression)."""
        out = self.logits(X)
        if self.task == "classification":
            return np.asarray(self.class_names, dtype=object)[out.argmax(1).numpy()]
        scaler = self.info.get("target_scaler")
        pred = out.squeeze(-1).double().numpy()
        return TargetScaler.from_dict(scaler).inverse_transform(pred) if scaler else pred


def save_model(run: Run, directory: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    (directory / "model.json").write_text(json.dumps({"format": MODEL_FORMAT, **run.info}, indent=2))


def _read_json(path: Path, fix: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"missing {path.name}", str(path.parent), fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable {path.name} ({type(exc).__name__})", str(path), fix) from None


def load(run_dir: str | Path) -> Run:
    """Load a trained run (weights + model.json + metrics + config) for prediction."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}", "RUN_DIR", "pass a directory written by `nnrecipe fit`")
    fix = "re-run `nnrecipe fit` to recreate the run"
    info = _read_json(run_dir / "model.json", fix)
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT or "architecture" not in info:
        raise UserError("model.json is not an nnrecipe model description", str(run_dir / "model.json"), fix)
    try:
        model = build_model(info["architecture"])
        state = load_file(str(run_dir / "model.safetensors"))
        model.load_state_dict(state)
    except FileNotFoundError:
        raise UserError("missing model.safetensors", str(run_dir), fix) from None
    except (SafetensorError, OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise UserError(f"corrupt or mismatched weights ({type(exc).__name__})",
                        str(run_dir / "model.safetensors"), fix) from None
    model.eval()
    metrics = _read_json(run_dir / "metrics.json", fix) if (run_dir / "metrics.json").exists() else {}
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    return Run(dir=run_dir, model=model, info=info, metrics=metrics, config=config or {})
