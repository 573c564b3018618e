"""A run directory and the trained model inside it: the contract between stages.

``model.safetensors`` holds the weights (safetensors: no pickle, no code execution on load);
``model.json`` holds everything else needed to predict: architecture, the input transform's
statistics, class names, temperature, feature names; whitening matrices (too big for JSON) are in
``preprocess.safetensors``. ``Run`` is what ``nnrecipe.fit`` returns and
``nnrecipe.load`` reads back.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nnrecipe.data import TargetScaler
from nnrecipe.data.transform import InputTransform
from nnrecipe.errors import UserError
from nnrecipe.models import build_model
from nnrecipe.post.ensemble import average_predictions, average_probabilities
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.post.compressed_io import load_compressed_model
from nnrecipe.training.checkpoint import INCOMPLETE  # re-exported: the marker of an unfinished run
from nnrecipe.training.loop import predict_logits
from nnrecipe.training.peft import ADAPTER_FILE, adapter_state_dict, load_peft_model

MODEL_FORMAT = 1
FIX = "re-run `nnrecipe fit` to recreate the run"


@dataclass
class Run:
    dir: Path | None
    model: torch.nn.Module | None
    info: dict  # the content of model.json
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    members: list["Run"] = field(default_factory=list)  # an ensemble's members (model is None then)
    transform: InputTransform | None = None  # raw rows → model input (ensembles: the members')
    predictions: str | None = None  # predictions.csv text for the test split (written by fit)

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

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the raw images the model takes, or None for vectors."""
        shape = self.info.get("transform", {}).get("image_shape")
        return tuple(shape) if shape else None

    def standardize(self, X) -> np.ndarray:
        """Check the shape and apply the stored input transform ((x − μ)/σ, whitening, reshape)."""
        transform = self.transform or (self.members[0].transform if self.members else None)
        return transform.apply(X)

    def logits_standardized(self, Z: np.ndarray) -> torch.Tensor:
        device = next(self.model.parameters(), torch.empty(0)).device  # an int8 model may have no parameters
        return predict_logits(self.model, torch.as_tensor(Z, dtype=torch.float32, device=device)).cpu()

    def predict_proba_standardized(self, Z: np.ndarray) -> np.ndarray:
        if self.members:
            return average_probabilities([m.predict_proba_standardized(Z) for m in self.members])
        return apply_temperature(self.logits_standardized(Z).double(), self.temperature).numpy()

    def predict_standardized(self, Z: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.class_names, dtype=object)[self.predict_proba_standardized(Z).argmax(1)]
        if self.members:
            return average_predictions([m.predict_standardized(Z) for m in self.members])
        pred = self.logits_standardized(Z).squeeze(-1).double().numpy()
        scaler = self.info.get("target_scaler")
        return TargetScaler.from_dict(scaler).inverse_transform(pred) if scaler else pred

    def logits(self, X) -> torch.Tensor:
        """Raw model outputs (a single model, not an ensemble)."""
        return self.logits_standardized(self.standardize(X))

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities softmax(z/T), shape [N, C] (ensembles: the members' mean)."""
        if self.task != "classification":
            raise UserError("predict_proba needs a classification run", str(self.dir), "use predict()")
        return self.predict_proba_standardized(self.standardize(X))

    def predict(self, X) -> np.ndarray:
        """Class names (classification) or targets in original units (regression)."""
        return self.predict_standardized(self.standardize(X))


def save_model(run: Run, directory: Path) -> None:
    if run.info.get("peft"):  # only the adapter tensors; model.json's "peft" names the base weights
        save_file(adapter_state_dict(run.model), str(directory / ADAPTER_FILE))
    else:
        state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
    arrays = run.transform.arrays() if run.transform is not None else {}
    if arrays:
        save_file({k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in arrays.items()},
                  str(directory / "preprocess.safetensors"))
    (directory / "model.json").write_text(json.dumps({"format": MODEL_FORMAT, **run.info}, indent=2))


def _read_json(path: Path, fix: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"missing {path.name}", str(path.parent), fix) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable {path.name} ({type(exc).__name__})", str(path), fix) from None


def _read_yaml(path: Path, fix: str) -> dict:
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"unreadable {path.name} ({type(exc).__name__})", str(path), fix) from None
    if tree is not None and not isinstance(tree, dict):
        raise UserError(f"{path.name} is not a mapping", str(path), fix)
    return tree or {}


def read_run_info(run_dir: str | Path) -> dict:
    """model.json of a complete run directory (a `UserError` saying what is wrong otherwise)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}", "RUN_DIR", "pass a directory written by `nnrecipe fit`")
    if (run_dir / INCOMPLETE).exists():
        raise UserError("run is incomplete", str(run_dir), f"resume it with `nnrecipe fit --resume {run_dir}`")
    info = _read_json(run_dir / "model.json", FIX)
    if not isinstance(info, dict):
        raise UserError("model.json is not an nnrecipe model description", str(run_dir / "model.json"), FIX)
    return info


def read_metrics_and_config(run_dir: Path) -> tuple[dict, dict]:
    metrics = _read_json(run_dir / "metrics.json", FIX) if (run_dir / "metrics.json").exists() else {}
    config = _read_yaml(run_dir / "config.yaml", FIX) if (run_dir / "config.yaml").exists() else {}
    return metrics, config or {}


def load_predictor(run_dir: str | Path, info: dict | None = None, *, model: torch.nn.Module | None = None) -> Run:
    """A classifier's or regressor's run (tabular, image, sequence, the user's module, an
    ensemble): weights + model.json + metrics + config, ready to predict. `nnrecipe.load` finds
    the family first (`nnrecipe.tasks.load`); this is the predictors' part.

    A run of the user's own module (``model.name: custom``) rebuilds its class from model.json
    when it is importable; otherwise pass an instance as `model` and the weights load into it."""
    run_dir = Path(run_dir)
    info = info if info is not None else read_run_info(run_dir)
    fix = FIX
    if info.get("format") != MODEL_FORMAT or not ("architecture" in info or isinstance(info.get("ensemble"), list)):
        raise UserError("model.json is not an nnrecipe model description", str(run_dir / "model.json"), fix)
    metrics, config = read_metrics_and_config(run_dir)
    if "ensemble" in info:
        members = [load_predictor(run_dir / name, model=copy.deepcopy(model) if model is not None else None)
                   for name in info["ensemble"]]
        return Run(dir=run_dir, model=None, info=info, metrics=metrics, config=config, members=members)
    try:
        if info.get("peft"):  # base weights (SHA-256 checked) + adapter.safetensors
            model = load_peft_model(info, run_dir)
        elif info.get("compression"):  # sparse / int8 weights written by `nnrecipe compress`
            model = load_compressed_model(run_dir, info)
        else:
            model = model if model is not None else build_model(info["architecture"])
            state = load_file(str(run_dir / "model.safetensors"))
            model.load_state_dict(state)
    except FileNotFoundError:
        raise UserError("missing model.safetensors", str(run_dir), fix) from None
    except (SafetensorError, OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise UserError(f"corrupt or mismatched weights ({type(exc).__name__})",
                        str(run_dir / "model.safetensors"), fix) from None
    model.eval()
    transform = (None if "sequence" in info or "tagging" in info  # token ids: the vocab in model.json encodes them
                 else InputTransform.from_saved(info.get("transform") or {}, _read_arrays(run_dir, fix)))
    return Run(dir=run_dir, model=model, info=info, metrics=metrics, config=config, transform=transform)


def _read_arrays(run_dir: Path, fix: str) -> dict[str, np.ndarray]:
    path = run_dir / "preprocess.safetensors"
    if not path.exists():
        return {}
    try:
        return {k: v.double().numpy() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"corrupt preprocessing file ({type(exc).__name__})", str(path), fix) from None
