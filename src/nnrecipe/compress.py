"""`nnrecipe compress RUN`: the smallest model whose validation metric stays within a budget.

Variants of a trained run's model (`nnrecipe.post.prune`, `nnrecipe.post.quantize`):

    original             fp32 weights, as trained
    quantized            int8: dynamic for MLPs, static (calibrated on training rows) for conv nets
    pruned               global magnitude pruning at s* = max{s : drop_val(s) ≤ max_drop} (bisection;
                         the output head stays dense, s counts the other Linear/Conv weights and
                         the RNN/LSTM/GRU weight matrices W_ih, W_hh)
    pruned+quantized     pruned, then quantized; s* bisected on the combination itself
    channel[+quantized]  with structured=True: L2 channel pruning of Linear/Conv rows, the same
                         bisection (skipped, and recorded in "skipped", when there are none)

drop = m(original) − m(variant) for accuracy, f1_macro and r2 (higher is better) and
m(variant) − m(original) for rmse, on the validation split (or `data`); test_drop likewise on the
test split. Both splits are rebuilt from the run's config.yaml exactly as `fit` made them (same
seed, same split, same train-split statistics), as `nnrecipe calibrate` does.

Sequence classifiers (rnn/lstm/gru/transformer on ``seq:…`` tasks or text CSVs; not language models
or seq2seq) take their token-id splits from `nnrecipe.sequence_data.prepare_sequences` with the saved
vocabulary's check. Their quantization is dynamic int8 of the Linear and LSTM/GRU layers (a plain
RNN's recurrent weights stay float: torch has no int8 kernel for it). Their recurrent matrices are
pruned in the global pool, so pruned+quantized is a sparse int8 LSTM/GRU: symmetric int8 keeps the
zeros at 0 and the bitmask storage drops them from the file.

Each variant is written in the compressed format (`nnrecipe.post.compressed_io`) and size_bytes is
the file's real size (the original's: the run's own model.safetensors); latency_ms is the median of
20 timed forward passes of a 256-row batch on the CPU. The chosen variant is the smallest on disk
among those with drop ≤ max_drop (the original always qualifies); it is written as a loadable run
directory (RUN/compressed by default) and the whole table to RUN/compression.json.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nnrecipe.data import TargetScaler
from nnrecipe.errors import UserError
from nnrecipe.evaluation import classification_split
from nnrecipe.metrics import regression_metrics
from nnrecipe.post.compressed_io import nonzero_parameters, save_compressed
from nnrecipe.post.prune import bisect_sparsity, channel_prune, global_magnitude_prune, prunable_weights, sparsity
from nnrecipe.post.quantize import engine, quantization_kind, quantize
from nnrecipe.rundir import atomic_dir, require_empty_out
from nnrecipe.run import Run
from nnrecipe.tasks import open_run, task_for_info
from nnrecipe.training.data_loading import close_streams, first_rows
from nnrecipe.training.loop import predict_logits
from nnrecipe.report.html import write_report

METRICS = {"classification": ("accuracy", "f1_macro"), "regression": ("rmse", "r2")}
LOWER_IS_BETTER = ("rmse",)
METHODS = ("quantize", "prune")
PRUNERS = {"global": global_magnitude_prune, "channel": channel_prune}
CALIBRATION_ROWS = 512  # static quantization: activation ranges from this many training rows
LATENCY_ROWS, LATENCY_RUNS, WARMUP_RUNS = 256, 20, 3
COPIED = ("config.yaml", "history.csv", "health.csv", "preprocess.safetensors")


def _check_options(max_drop: float, methods, structured: bool) -> list[str]:
    if isinstance(max_drop, bool) or not (isinstance(max_drop, (int, float)) and math.isfinite(max_drop)
                                          and max_drop >= 0):
        raise UserError(f"max_drop must be a number >= 0, got {max_drop}", "--max-drop",
                        "pass the largest acceptable metric drop, e.g. 0.005")
    parts = [methods] if isinstance(methods, str) else list(methods)
    methods = [m.strip() for part in parts for m in part.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS] or ([] if methods else ["(none)"])
    if bad:
        raise UserError(f"unknown compression method '{bad[0]}'", "--methods",
                        f"pass a comma-separated subset of {','.join(METHODS)}")
    if structured and "prune" not in methods:
        raise UserError("structured pruning needs the prune method", "--structured", "add prune to --methods")
    return methods


def _check_metric(task: str, metric: str | None) -> str:
    metric = metric or METRICS[task][0]
    if metric not in METRICS[task]:
        raise UserError(f"metric '{metric}' does not apply to a {task} run", "--metric",
                        f"choose one of {', '.join(METRICS[task])}")
    return metric


def _check_run(run: Run, run_dir) -> None:
    sequence = run.info.get("sequence")
    if run.members or run.info.get("peft") or (sequence is not None and sequence.get("kind") != "classify"):
        raise UserError("compress takes one tabular, image or sequence-classifier model, not an ensemble, adapter, "
                        "language model or seq2seq run", str(run_dir),
                        "pass a run written by `nnrecipe fit` (compress an ensemble's members one by one)")


def calibration_rows(X_train) -> torch.Tensor:
    """The static-quantization calibration sample: CALIBRATION_ROWS training rows in a seeded order
    (read from the folder for a data.lazy run)."""
    order = torch.randperm(len(X_train), generator=torch.Generator().manual_seed(0))[:CALIBRATION_ROWS]
    return X_train[order]  # a DatasetBatches reads just these rows


def _scores(run: Run, model, X: torch.Tensor, y: torch.Tensor) -> dict | None:
    """The metrics block `fit` writes for a split (None for an empty split)."""
    if len(X) == 0:
        return None
    if run.task == "classification":
        bins = run.config.get("calibration", {}).get("ece_bins", 15)
        return classification_split(model, X, y, run.class_names, run.temperature, bins)
    pred = predict_logits(model, X).squeeze(-1).double().numpy()
    scaler = run.info.get("target_scaler")
    if scaler:
        pred = TargetScaler.from_dict(scaler).inverse_transform(pred)
    return regression_metrics(torch.as_tensor(pred), y)


def _drop(metric: str, original: float | None, value: float | None) -> float | None:
    if original is None or value is None:
        return None
    return value - original if metric in LOWER_IS_BETTER else original - value


def latency_ms(model, X: torch.Tensor, *, rows: int = LATENCY_ROWS, runs: int = LATENCY_RUNS) -> float:
    """Median wall time (ms) of one forward pass over a `rows`-row batch (X repeated if shorter)."""
    batch = X.repeat(math.ceil(rows / len(X)), *([1] * (X.dim() - 1)))[:rows]
    times = []
    with torch.no_grad():
        for i in range(WARMUP_RUNS + runs):
            start = time.perf_counter()
            model(batch)
            if i >= WARMUP_RUNS:
                times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _candidates(methods: list[str], structured: bool, qkind: str | None) -> list[tuple[str, str | None, str | None]]:
    """(name, pruning kind, quantization kind) of every variant to measure."""
    out = [("original", None, None)]
    quant = "quantize" in methods and qkind is not None
    if quant:
        out.append(("quantized", None, qkind))
    if "prune" in methods:
        kinds = (("global", "pruned"), ("channel", "channel")) if structured else (("global", "pruned"),)
        for prune_kind, name in kinds:
            out.append((name, prune_kind, None))
            if quant:
                out.append((f"{name}+quantized", prune_kind, qkind))
    return out


class _Compressor:
    """Builds, measures and stores variants of one run's model."""

    def __init__(self, run: Run, splits: dict, metric: str, max_drop: float, workdir: Path):
        self.run, self.splits, self.metric, self.max_drop, self.workdir = run, splits, metric, max_drop, workdir
        self.calibration = list(calibration_rows(splits["train"][0]).split(LATENCY_ROWS))
        self.original_val, self.original_test = self.value(run.model, "val"), self.value(run.model, "test")

    def value(self, model, split: str) -> float | None:
        scores = _scores(self.run, model, *self.splits[split])
        return None if scores is None else scores[self.metric]

    def make(self, prune_kind: str | None, qkind: str | None, amount: float):
        pruned = PRUNERS[prune_kind](self.run.model, amount) if prune_kind else self.run.model
        return pruned, (quantize(pruned, qkind, self.calibration) if qkind else pruned)

    def ok(self, drop: float) -> bool:
        return drop <= self.max_drop + 1e-12  # equal metrics must not fail a zero budget by rounding

    def within_budget(self, model) -> bool:
        return self.ok(_drop(self.metric, self.original_val, self.value(model, "val")))

    def variant(self, name: str, prune_kind: str | None, qkind: str | None) -> tuple[dict, torch.nn.Module]:
        amount, trials = 0.0, []
        if prune_kind:  # quantized at s = 0 may be just over budget while some s > 0 is not (noise)
            amount, trials = bisect_sparsity(lambda s: self.within_budget(self.make(prune_kind, qkind, s)[1]))
        float_model, model = self.make(prune_kind, qkind, amount)
        val, test = self.value(model, "val"), self.value(model, "test")
        if name == "original":
            size = (self.run.dir / "model.safetensors").stat().st_size
        else:
            size = save_compressed(model, self.workdir / f"{name}.safetensors")
        drop = _drop(self.metric, self.original_val, val)
        timing_rows = first_rows(self.splits["test" if len(self.splits["test"][0]) else "val"][0], LATENCY_ROWS)
        record = {"name": name, "pruned": prune_kind, "quantized": qkind, "amount": amount,
                  "sparsity": sparsity(float_model), "val_metric": val, "test_metric": test, "drop": drop,
                  "test_drop": _drop(self.metric, self.original_test, test), "size_bytes": size,
                  "nonzero_params": nonzero_parameters(model), "latency_ms": latency_ms(model, timing_rows),
                  "within_budget": self.ok(drop), "bisection": [[s, ok] for s, ok in trials]}
        return record, model


def compress(run_dir: str | Path, *, max_drop: float = 0.005, metric: str | None = None,
             methods: tuple[str, ...] | list[str] | str = METHODS, structured: bool = False,
             data: str | None = None, out: str | Path | None = None) -> dict:
    """Measure the variants, write the chosen one as a run directory (`out`, default RUN/compressed)
    and RUN/compression.json; return the report (compression.json's content).

    `metric` defaults to accuracy (classification) or rmse (regression); `data` (labelled rows with
    the run's columns) replaces the validation split for the budget."""
    methods = _check_options(max_drop, methods, structured)
    run = open_run(run_dir, "compress")
    _check_run(run, run_dir)
    metric = _check_metric(run.task, metric)
    out = Path(out) if out else run.dir / "compressed"
    if out.resolve() == run.dir.resolve():
        raise UserError("the compressed run cannot replace the original", "--out", "choose a new directory")
    require_empty_out(out)
    splits = task_for_info(run.info).rebuild_splits(run, data)
    try:
        return _compress(run, splits, methods, structured, metric, max_drop, data, out)
    finally:
        close_streams(splits)  # data.lazy: the DataLoader workers end here


def _compress(run: Run, splits: dict, methods: list[str], structured: bool, metric: str, max_drop: float,
              data: str | None, out: Path) -> dict:
    """`compress` once the options are checked and the splits loaded."""
    skipped, qkind = [], quantization_kind(run.model)
    if "prune" in methods and not prunable_weights(run.model):
        names = [n for n, kind, _ in _candidates(methods, structured, qkind) if kind]
        skipped.append({"name": ", ".join(names), "reason": "no Linear/Conv/RNN weights to prune besides the "
                        "output head"})
        methods = [m for m in methods if m != "prune"]
    elif structured and "prune" in methods and not prunable_weights(run.model, recurrent=False):
        names = [n for n, kind, _ in _candidates(methods, structured, qkind) if kind == "channel"]
        skipped.append({"name": ", ".join(names), "reason": "no Linear/Conv rows to channel-prune besides the "
                        "output head (recurrent weights take global pruning only)"})
        structured = False
    if "quantize" in methods and qkind == "static":
        try:
            quantize(run.model, "static", [first_rows(splits["train"][0], LATENCY_ROWS)])
        except Exception as exc:  # an op FX cannot trace or quantize: report it, keep the other variants
            skipped.append({"name": "quantized, pruned+quantized",
                            "reason": f"static quantization failed: {type(exc).__name__}: {exc}"})
            qkind = None
    with tempfile.TemporaryDirectory(prefix="nnrecipe-compress-") as work:
        compressor = _Compressor(run, splits, metric, max_drop, Path(work))
        variants, models = [], {}
        for name, prune_kind, kind in _candidates(methods, structured, qkind):
            record, models[name] = compressor.variant(name, prune_kind, kind)
            variants.append(record)
    base = variants[0]["size_bytes"]
    for v in variants:
        v["compression_ratio"] = base / v["size_bytes"]
    chosen = min((v for v in variants if v["within_budget"]), key=lambda v: v["size_bytes"])
    recorded = (run.metrics.get("test") or {}).get(metric)
    report = {"run": str(run.dir), "metric": metric, "higher_is_better": metric not in LOWER_IS_BETTER,
              "max_drop": max_drop, "validation": data or "validation split", "variants": variants,
              "chosen": chosen["name"], "chosen_dir": str(out),
              "test_drop_exceeds_budget": bool(chosen["test_drop"] is not None and chosen["test_drop"] > max_drop),
              "original_test_metric_recorded": recorded, "skipped": skipped, "engine": engine(),
              "latency": {"batch_rows": LATENCY_ROWS, "runs": LATENCY_RUNS, "threads": torch.get_num_threads()}}
    _write_compressed_run(run, models[chosen["name"]], chosen, splits, out, report)
    _write_json(run.dir / "compression.json", report)
    if (run.dir / "history.csv").exists():  # the report gains the compression table
        write_report(run.dir)
    return report


def _write_compressed_run(run: Run, model, chosen: dict, splits: dict, out: Path, report: dict) -> None:
    info = dict(run.info)
    info["compression"] = {"variant": chosen["name"], "pruned": chosen["pruned"], "sparsity": chosen["sparsity"],
                           "quantized": chosen["quantized"], "engine": report["engine"],
                           "example_shape": [1, *first_rows(splits["train"][0], 1).shape[1:]],
                           "source_run": str(run.dir),
                           "metric": report["metric"], "max_drop": report["max_drop"]}
    metrics = dict(run.metrics)
    metrics["val"] = _scores(run, model, *splits["val"])
    metrics["test"] = _scores(run, model, *splits["test"])
    metrics["compression"] = chosen
    with atomic_dir(out) as tmp:
        for name in COPIED:
            if (run.dir / name).exists():
                shutil.copy2(run.dir / name, tmp / name)
        save_compressed(model, tmp / "model.safetensors")
        (tmp / "model.json").write_text(json.dumps(info, indent=2))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
