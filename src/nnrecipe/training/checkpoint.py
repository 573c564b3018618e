"""Checkpoints: everything a fit needs to continue bit for bit after a crash, written atomically.

A checkpoint is two files in ``RUN/checkpoints/``:

- ``ckpt-NNNNNN.safetensors``: every tensor (model weights and buffers, optimizer state, early
  stopping's best weights, the epoch's per-step statistics rows, the RNG states of torch's CPU
  generator, of CUDA if used, and of the batch-order/augmentation ``torch.Generator``);
- ``ckpt-NNNNNN.json``: everything else, nested as the objects hold it, each tensor replaced by
  ``{"__tensor__": name}``: trainer step, LR factor and skipped steps, the epoch/batch position
  (`nnrecipe.training.loop.EpochProgress`), the plateau schedule's counters, the callbacks' state
  (history rows, early stopping, health-monitor rows, unfreezing), Python's and NumPy's RNG
  states, and the checkpointer's own (sequence number, best val loss, elapsed seconds).

Why hand-written: ``torch.save`` pickles, and loading a pickle can run code; safetensors holds only
a flat name → tensor map, so the nesting (optimizer state keyed by parameter index, tuples such as
Adam's betas or Python's RNG state, NumPy arrays) is encoded here as tagged JSON
(``__tuple__``, ``__dict__`` for non-string keys, ``__ndarray__``) and decoded back exactly.
JSON writes floats with ``repr``, which round-trips every double.

Crash safety. Each file is written by `atomic_write_bytes`: a temporary file in the same directory,
flushed and fsynced, renamed over the target with ``os.replace`` (atomic on POSIX and Windows),
then the directory is fsynced so the rename itself is on disk. The tensors go first, the JSON
second: the JSON is the commit record. It holds the SHA-256 of the tensor file and of its own
body, so a checkpoint exists iff its JSON exists and both digests match; a crash at any moment
leaves the previous checkpoint intact, and a damaged file is reported (`UserError`), never
half-loaded. Retention: the newest ``keep`` checkpoints plus the best end-of-epoch one by
validation loss; older files are deleted JSON first.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors, save as save_tensors

from nnrecipe.errors import UserError
from nnrecipe.training.callbacks import Callback
from nnrecipe.training.loop import EpochProgress
from nnrecipe.training.transfer import Unfreezer

INCOMPLETE = "INCOMPLETE"  # marker file of a run directory still training or interrupted (nnrecipe.rundir)

FORMAT = 1
_NAME = re.compile(r"^ckpt-(\d{6,})\.json$")


# -- atomic writes ------------------------------------------------------------------------------

def fsync_dir(path: str | Path) -> None:
    """Flush a directory entry (a rename, a new or deleted file) to disk."""
    if os.name != "posix":  # Windows cannot open a directory; its os.replace is still atomic
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one, whole.

    ``sync_dir=False`` leaves the rename to be made durable by a later fsync of the same directory
    (a checkpoint's tensors: the fsync after its JSON covers both renames)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


# -- nested state <-> (JSON, tensors) -------------------------------------------------------------

_SCALAR_TYPES = {bool, int, float, str, type(None)}

def encode_state(obj, tensors: dict[str, torch.Tensor], prefix: str = ""):
    """A JSON-able copy of `obj`; its tensors move to `tensors` under their path (``a/b/0``)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, list)):
        if all(type(v) in _SCALAR_TYPES for v in obj):  # fast path: RNG states are 625 ints
            items = list(obj)
        else:
            items = [encode_state(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            if all(type(v) in _SCALAR_TYPES for v in obj.values()):  # fast path: history/health rows
                return dict(obj)
            return {k: encode_state(v, tensors, f"{prefix}/{k}") for k, v in obj.items()}
        # optimizer state is keyed by parameter index: JSON would turn the ints into strings
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"cannot checkpoint a dict key of type {type(k).__name__} at {prefix}")
        return {"__dict__": [[k, encode_state(v, tensors, f"{prefix}/{k}")] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix or 'top level'}")


def decode_state(obj, tensors: dict[str, torch.Tensor]):
    """Inverse of `encode_state`."""
    if isinstance(obj, list):
        return [decode_state(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return np.asarray(obj["__ndarray__"], dtype=np.dtype(obj["dtype"]))
    if "__tuple__" in obj:
        return tuple(decode_state(v, tensors) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {k: decode_state(v, tensors) for k, v in obj["__dict__"]}
    return {k: decode_state(v, tensors) for k, v in obj.items()}


# -- what is saved --------------------------------------------------------------------------------

def capture_rng(generator: torch.Generator | None) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(legacy=False),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng(state: dict, generator: torch.Generator | None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None:
        generator.set_state(state["generator"])


def callback_state(cb) -> dict | None:
    """The resumable state of a callback, or None if it has none."""
    if isinstance(cb, Unfreezer):
        return {"trainable_from": cb.trainable_from, "events": cb.events}
    return cb.state_dict() if hasattr(cb, "state_dict") else None


def load_callback_state(cb, state: dict) -> None:
    """Restore `callback_state` after the callback's own ``on_fit_begin`` has run."""
    if isinstance(cb, Unfreezer):
        cb.events = list(state["events"])
        cb._set(cb.n_frozen, int(state["trainable_from"]))
    else:
        cb.load_state_dict(state)


def _callback_key(cb, seen: dict[str, int]) -> str:
    name = type(cb).__name__
    seen[name] = seen.get(name, 0) + 1
    return name if seen[name] == 1 else f"{name}{seen[name]}"


def capture(trainer) -> dict:
    """The trainer's whole resumable state (call between steps)."""
    p = trainer.progress
    seen: dict[str, int] = {}
    callbacks = {}
    for cb in trainer.callbacks:
        state = callback_state(cb)
        if state is not None:
            callbacks[_callback_key(cb, seen)] = state
    stats = p.stats[: len(p.sizes)] if p.stats is not None else torch.zeros(0, 5)
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "schedule": trainer.schedule.state_dict(),
        "trainer": {"step": trainer.step, "lr_factor": trainer.lr_factor, "skipped_steps": trainer.skipped_steps,
                    "should_stop": trainer.should_stop},
        "progress": {"epoch": p.epoch, "batches_done": p.batches_done, "start_generator_state": p.start_generator_state,
                     "stats": stats, "sizes": list(p.sizes), "lr": p.lr},
        "rng": capture_rng(trainer.generator),
        "callbacks": callbacks,
    }


def restore(trainer, state: dict) -> None:
    """Put `capture`'s state back; the callbacks' ``on_fit_begin`` must have run already."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.schedule.load_state_dict(state["schedule"])
    t = state["trainer"]
    trainer.step, trainer.lr_factor = int(t["step"]), float(t["lr_factor"])
    trainer.skipped_steps, trainer.should_stop = int(t["skipped_steps"]), bool(t["should_stop"])
    p = state["progress"]
    trainer.progress = EpochProgress(epoch=int(p["epoch"]), batches_done=int(p["batches_done"]),
                                     start_generator_state=p["start_generator_state"], stats=p["stats"],
                                     sizes=[int(s) for s in p["sizes"]], lr=p["lr"])
    seen: dict[str, int] = {}
    saved = state["callbacks"]
    for cb in trainer.callbacks:
        if callback_state(cb) is None:
            continue
        key = _callback_key(cb, seen)
        if key not in saved:
            raise KeyError(f"no saved state for callback {key}")
        load_callback_state(cb, saved[key])
    restore_rng(state["rng"], trainer.generator)


# -- files ----------------------------------------------------------------------------------------

def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoint_paths(directory: Path, seq: int) -> tuple[Path, Path]:
    return directory / f"ckpt-{seq:06d}.json", directory / f"ckpt-{seq:06d}.safetensors"


def save_checkpoint(directory: str | Path, seq: int, state: dict) -> Path:
    """Write checkpoint `seq` (tensors, then the JSON commit record); returns the JSON path."""
    directory = Path(directory)
    json_path, tensor_path = checkpoint_paths(directory, seq)
    tensors: dict[str, torch.Tensor] = {}
    plain = encode_state(state, tensors)
    blob = save_tensors(tensors)
    atomic_write_bytes(tensor_path, blob, sync_dir=False)
    body = _canonical({"format": FORMAT, "seq": seq, "tensors": tensor_path.name,
                       "tensors_sha256": hashlib.sha256(blob).hexdigest(), "state": plain})
    # the record is the body with its own digest as one more key (the body is a JSON object)
    atomic_write_bytes(json_path, f'{body[:-1]}, "sha256": "{_sha256(body)}"}}'.encode())
    return json_path


def _damaged(path: Path, why: str) -> UserError:
    return UserError(f"damaged checkpoint ({why})", str(path),
                     "delete this checkpoint's .json to resume from the previous one, or start the run again")


def load_checkpoint(json_path: str | Path) -> dict:
    """The state saved by `save_checkpoint`; a damaged or foreign file raises `UserError` naming it."""
    json_path = Path(json_path)
    try:
        record = json.loads(json_path.read_bytes())
    except FileNotFoundError:
        raise UserError("checkpoint not found", str(json_path), "pass a ckpt-*.json file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _damaged(json_path, type(exc).__name__) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("tensors"), str):
        raise _damaged(json_path, "not an nnrecipe checkpoint")
    body = {k: v for k, v in record.items() if k != "sha256"}
    if record.get("sha256") != _sha256(_canonical(body)):
        raise _damaged(json_path, "checksum mismatch")
    tensor_path = json_path.parent / Path(record["tensors"]).name
    try:
        blob = tensor_path.read_bytes()
    except OSError as exc:
        raise _damaged(tensor_path, type(exc).__name__) from None
    if hashlib.sha256(blob).hexdigest() != record.get("tensors_sha256"):
        raise _damaged(tensor_path, "checksum mismatch")
    try:
        return decode_state(record["state"], load_tensors(blob))
    except (SafetensorError, KeyError, TypeError, ValueError) as exc:
        raise _damaged(tensor_path, type(exc).__name__) from None


def list_checkpoints(directory: str | Path) -> list[int]:
    """Sequence numbers of the committed checkpoints (those with a JSON record), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name)))


def latest_checkpoint(directory: str | Path) -> Path | None:
    seqs = list_checkpoints(directory)
    return checkpoint_paths(Path(directory), seqs[-1])[0] if seqs else None


def prune_checkpoints(directory: Path, *, keep: int, best: int | None) -> None:
    """Delete all but the newest `keep` checkpoints and `best`; also orphans and temp files."""
    seqs = list_checkpoints(directory)
    kept = set(seqs[-keep:]) | ({best} if best is not None else set())
    for seq in seqs:
        if seq not in kept:
            for path in checkpoint_paths(directory, seq):  # JSON first: never a record without tensors
                path.unlink(missing_ok=True)
    newest = seqs[-1] if seqs else -1
    for path in directory.glob("ckpt-*.safetensors"):
        seq = int(path.stem[5:]) if path.stem[5:].isdigit() else -1
        if seq not in kept and seq < newest:  # tensors whose JSON never got written
            path.unlink(missing_ok=True)
    # no fsync: a deletion lost to a power cut only brings back an old checkpoint, pruned next time


def remove_temp_files(directory: Path) -> None:
    """Leftovers of a write a crash interrupted (only ever call this while no one else writes)."""
    for path in directory.glob(".ckpt-*.tmp"):
        path.unlink(missing_ok=True)


# -- the callback -----------------------------------------------------------------------------------

class Checkpointer(Callback):
    """Save a checkpoint after every epoch and every `every_steps` optimizer steps; with `resume`
    (a `load_checkpoint` state), restore it when the fit begins.

    `config` (the run's resolved configuration as a dict) is stored with every checkpoint; a resume
    whose configuration differs is refused, since it would not continue the same run.
    """

    order = 30  # after EarlyStopping (0), Unfreezer (1), History (5), HealthMonitor (20) updated

    def __init__(self, directory: str | Path, *, config: dict, every_steps: int | None = None, keep: int = 2,
                 resume: dict | None = None, resume_path: Path | None = None):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory, self.config, self.keep = Path(directory), config, keep
        self.every_steps = every_steps
        self.resume, self.resume_path = resume, resume_path
        own = resume["checkpointer"] if resume else {}
        self.seq = int(own.get("seq", 0))
        self.best_val = own.get("best_val")
        self.best_seq = own.get("best_seq")
        self.elapsed_before = float(own.get("elapsed_seconds", 0.0))  # training time of earlier processes
        self._clock = time.perf_counter()

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._clock

    def on_fit_begin(self, trainer, logs):
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_temp_files(self.directory)
        self._clock = time.perf_counter()
        if self.resume is None:
            return
        where = str(self.resume_path or self.directory)
        saved = self.resume.get("config")
        if saved != self.config:
            changed = sorted(_changed_keys(saved or {}, self.config))
            raise UserError(f"config.yaml differs from the checkpoint's ({', '.join(changed[:5]) or 'format'})",
                            where, "put config.yaml back as it was, or start a new run (--init-from to reuse weights)")
        try:
            restore(trainer, self.resume)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise UserError(f"checkpoint does not fit this run ({type(exc).__name__}: {exc})", where,
                            "start the run again; the checkpoint was written by another version or model") from None
        self.resume = None  # free the tensors

    def on_step_end(self, trainer, logs):
        self.save(trainer)

    def on_epoch_end(self, trainer, logs):
        value = logs.get("val_loss")
        best = value is not None and math.isfinite(value) and (self.best_val is None or value < self.best_val)
        if best:
            self.best_val = value
        self.save(trainer, best=best)

    def save(self, trainer, *, best: bool = False) -> Path:
        self.seq += 1
        if best:
            self.best_seq = self.seq
        state = capture(trainer)
        state["config"] = self.config
        state["checkpointer"] = {"seq": self.seq, "best_val": self.best_val, "best_seq": self.best_seq,
                                 "elapsed_seconds": self.elapsed()}
        path = save_checkpoint(self.directory, self.seq, state)
        prune_checkpoints(self.directory, keep=self.keep, best=self.best_seq)
        return path


def _changed_keys(a: dict, b: dict, prefix: str = "") -> set[str]:
    out = set()
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out |= _changed_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            out.add(f"{prefix}{key}")
    return out
