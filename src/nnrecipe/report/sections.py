"""Sections of a run report that every kind of run has: overview, config, data, model, learning
curves, training health, compression, ensemble members. Each returns (id, heading, HTML body).

The model summary rebuilds the architecture from model.json (`nnrecipe.models.build_model`, fresh
weights, the global RNG untouched) and runs `nnrecipe.models.summary.summarize` on one zero input:
(1, in_features) for an MLP, (1, C, H, W) for image models, (1, 16) token ids for sequence models
(MACs then count 16 tokens). Parameter counts do not depend on the input.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from safetensors import safe_open

from nnrecipe.errors import UserError
from nnrecipe.models import build_model
from nnrecipe.models.summary import human, summarize
from nnrecipe.report.figures import health_figure, overlay_figure, profile_figure
from nnrecipe.report.markup import details, figure_png, fmt, image, not_available, para, stored_or_drawn, table
from nnrecipe.report.plots import plot_learning_curves
from nnrecipe.report.runfiles import RunFiles

_TOKENS = 16  # length of the dummy token sequence a sequence model is summarized on
_MAX_NAMES = 60  # class names listed before "…"
HEADLINE = {"classification": ("accuracy", "f1_macro", "loss", "ece"), "regression": ("rmse", "mae", "r2"),
            "seq2seq": ("exact_match", "token_accuracy", "bleu"), "lm": ("perplexity", "token_accuracy"),
            "tagging": ("token_accuracy", "f1_macro", "entity_f1"), "captioning": ("bleu_4", "bleu_1", "exact_match")}


def headline_keys(run: RunFiles) -> tuple[str, ...]:
    return HEADLINE.get(run.metrics.get("kind") or run.task or "", ())


def overview(run: RunFiles) -> tuple[str, str, str]:
    m, cfg = run.metrics, run.config or {}
    test = m.get("test") or {}
    model = (run.model.get("architecture") or {}).get("name") or (cfg.get("model") or {}).get("name")
    rows = [["data", run.model.get("data") or (cfg.get("data") or {}).get("source")],
            ["model", f"ensemble of {len(run.model['ensemble'])} × {model}" if "ensemble" in run.model else model],
            ["task", run.task if run.kind == run.task else f"{run.task} ({run.kind})"], ["status", m.get("status")],
            ["epochs run (best)", f"{m['epochs_run']} (best {m.get('best_epoch')})" if "epochs_run" in m else None],
            ["training time (s)", m.get("train_seconds")]]
    rows += [[f"test {k}", test[k]] for k in headline_keys(run) if k in test]
    verdict = (m.get("diagnosis") or {}).get("verdict")
    body = table(["", "value"], rows)
    if verdict:
        body += f'<p>Curve diagnosis: <span class="verdict">{fmt(verdict)}</span></p>'
    return "overview", "Overview", body


def config(run: RunFiles) -> tuple[str, str, str]:
    if run.config_text is None:
        return "config", "Configuration", not_available("no config.yaml in the run directory")
    body = "<p>The fully resolved configuration: <code>nnrecipe fit --config config.yaml</code> reproduces the run.</p>"
    return "config", "Configuration", body + details("config.yaml", run.config_text)


def _split_sizes(run: RunFiles) -> tuple[list[list], str]:
    sizes = run.metrics.get("split_sizes")
    if isinstance(sizes, dict):
        return [[f"{k} rows", v] for k, v in sizes.items()], ""
    rows = []
    for split in ("val", "test"):
        cm = (run.metrics.get(split) or {}).get("confusion_matrix")
        if cm:
            rows.append([f"{split} rows", int(sum(map(sum, cm)))])
    if not any(r[0] == "test rows" for r in rows) and run.predictions is not None:
        rows.append(["test rows", int(len(run.predictions["y_true"]))])
    return rows, "(counted from the confusion matrices / predictions.csv; metrics.json has no split sizes)"


def data(run: RunFiles) -> tuple[str, str, str]:
    info, cfg = run.model, (run.config or {}).get("data") or {}
    rows = [["source", cfg.get("source") or info.get("data")], ["task", run.task]]
    sizes, note = _split_sizes(run)
    rows += sizes
    names = info.get("class_names") or (run.metrics.get("test") or {}).get("class_names")
    if names:
        shown = ", ".join(map(str, names[:_MAX_NAMES])) + (" …" if len(names) > _MAX_NAMES else "")
        rows.append([f"classes ({len(names)})", shown])
    shape = (info.get("transform") or {}).get("image_shape")
    if shape:
        rows.append(["image shape (C×H×W)", "×".join(map(str, shape))])
    elif info.get("feature_names"):
        rows.append(["features", len(info["feature_names"])])
    seq = info.get("sequence")
    if seq:
        rows.append(["sequence", f"{seq.get('kind')}, {seq.get('level')} level"])
        rows.append(["vocabulary", run.metrics.get("vocab_size")])
    if info.get("target_name") and run.task == "regression":
        rows.append(["target", info["target_name"]])
    return "data", "Data", table(["", "value"], rows) + (para(note, "na") if sizes and note else "")


def _summary_input(arch: dict) -> tuple[tuple[int, ...], torch.dtype]:
    if "input_shape" in arch:  # a user's module (model.name custom)
        return (1, *arch["input_shape"]), torch.float32
    if "in_features" in arch:
        return (1, arch["in_features"]), torch.float32
    if "in_channels" in arch:
        return (1, arch["in_channels"], *arch["image_size"]), torch.float32
    return (1, _TOKENS), torch.long


def _parameter_rows(model: torch.nn.Module) -> list[list]:
    return [[name or "(model)", type(mod).__name__, "–", sum(p.numel() for p in mod.parameters(recurse=False)), "–"]
            for name, mod in model.named_modules() if next(mod.parameters(recurse=False), None) is not None]


def _stored_tensors(run: RunFiles, arch: dict, why: str) -> str:
    path = run.dir / "model.safetensors"
    if not path.exists():
        return not_available(f"{why}; no model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        rows = [[key, "×".join(map(str, f.get_slice(key).get_shape())) or "–"] for key in f.keys()]
    total = sum(math.prod(int(d) for d in shape.split("×")) if shape != "–" else 1 for _, shape in rows)
    return (para(f"{arch.get('class', arch['name'])}: {total:,} stored values ({human(total)})")
            + table(["tensor", "shape"], rows) + para(f"layer table not drawn: {why}", "na"))


def model(run: RunFiles) -> tuple[str, str, str]:
    arch = run.model.get("architecture") or (run.members[0].model.get("architecture") if run.members else None)
    if not arch:
        return "model", "Model", not_available("model.json has no architecture")
    try:
        with torch.random.fork_rng(devices=[]):  # building initializes weights: leave the caller's RNG alone
            net = build_model(arch)
    except UserError as exc:  # a user's class that does not import here: its tensors are on disk
        return "model", "Model", _stored_tensors(run, arch, exc.what)
    shape, dtype = _summary_input(arch)
    note = ""
    try:
        result = summarize(net, shape, dtype=dtype)
        rows = [[r["name"] or "(model)", r["type"], "×".join(map(str, r["output_shape"] or [])) or "–",
                 r["params"], human(r["macs"])] for r in result["layers"]]
        macs = result["total_macs"]
    except (TypeError, RuntimeError, ValueError, IndexError) as exc:  # a forward that needs more than one input
        rows, macs = _parameter_rows(net), None
        note = f"output shapes and MACs not measured ({type(exc).__name__}: the model takes more than one input)"
    total = sum(p.numel() for p in net.parameters())
    body = para(f"{arch.get('class', arch['name'])}: {total:,} parameters ({human(total)})"
                + (f", {human(macs)} multiply-adds per sample (input {'×'.join(map(str, shape[1:]))})"
                   if macs is not None else "")
                + (f"; ensemble of {len(run.members)} such models" if run.members else ""))
    body += table(["layer", "type", "output", "params", "MACs"], rows) + (para(note, "na") if note else "")
    return "model", "Model", body


def learning_curves(run: RunFiles) -> tuple[str, str, str]:
    head = "Learning curves"
    if run.members:
        histories = [(f"member {i}", mem.history) for i, mem in enumerate(run.members) if mem.history]
        if not histories:
            return "learning-curves", head, not_available("no member recorded an epoch")
        return "learning-curves", head, image(figure_png(overlay_figure(histories)), "members' learning curves")
    if run.history is None:
        return "learning-curves", head, not_available("history.csv has no epochs (training stopped in epoch 1)")
    png = stored_or_drawn(run.dir / "plots" / "learning_curves.png",
                          lambda p: plot_learning_curves(run.dir / "history.csv", p))
    body = image(png,
                 "loss, accuracy, learning rate and gradient norm per epoch"
                 + (", sharpness λmax next to 2/η" if "lambda_max" in run.history else ""))
    body += _sharpness_note(run.history)
    diag = run.metrics.get("diagnosis")
    if diag:
        body += (f'<p>Diagnosis: <span class="verdict">{fmt(diag.get("verdict"))}</span> — '
                 f'{fmt("; ".join(diag.get("reasons") or []))}. Advice: {fmt(diag.get("advice"))}.</p>')
    else:
        body += not_available("metrics.json has no curve diagnosis")
    return "learning-curves", head, body


def _sharpness_note(history: dict) -> str:
    """One line on the last λmax measured (`train.curvature_every`) against 2/η at that epoch."""
    lam = history.get("lambda_max")
    if lam is None or not np.isfinite(lam).any():
        return ""
    last = int(np.flatnonzero(np.isfinite(lam))[-1])
    lr = float(history["lr"][last]) if "lr" in history else float("nan")
    product = float(lam[last]) * lr
    verdict = ("above the edge of stability: gradient descent at this η would diverge on a quadratic this sharp"
               if product > 2 else "below the edge of stability 2/η")
    return para(f"Sharpness at epoch {history['epoch'][last]:g}: λmax = {lam[last]:.4g}, "
                f"trace = {history['hessian_trace'][last]:.4g}; λmax·η = {product:.3g} ({verdict}).")


def health(run: RunFiles) -> tuple[str, str, str]:
    head = "Training health"
    warnings = run.metrics.get("health_warnings")
    body = ""
    if warnings:
        body += "<ul>" + "".join(f'<li class="warn">{fmt(w)}</li>' for w in warnings) + "</ul>"
    elif warnings is not None:
        body += para("No health warning (vanishing/exploding gradients, dead units) was raised.")
    if run.health is None:
        return "health", head, body + not_available("no health.csv in the run directory")
    fig = health_figure(run.health)
    if fig is None:
        return "health", head, body + not_available("health.csv has no samples (fewer optimizer steps than "
                                                    "train.log_every)")
    return "health", head, body + image(figure_png(fig), "per-layer gradient norm, update ratio, dead units")


def profile(run: RunFiles) -> tuple[str, str, str] | None:
    """`train.profile`: where the steps' time went (None: the run was not profiled)."""
    p = run.metrics.get("profile")
    if not p:
        return None
    phases = [k for k in p if k.endswith("_seconds") and p[k]]
    busy = sum(p[k] for k in phases) or 1.0
    rows = [[k[: -len("_seconds")], p[k], p[k] / busy] for k in phases]
    body = para("Wall-clock time of the training steps by phase over all epochs (validation not included); "
                "on an accelerator each phase boundary synchronizes the device while profiling.")
    body += table(["phase", "seconds", "share"], rows)
    facts = [["samples / s (mean over epochs)", p.get("samples_per_second")], ["peak RSS (MiB)", p.get("peak_rss_mb")],
             ["peak CUDA memory (MiB)", p.get("peak_cuda_mb")], ["torch.profiler trace", p.get("trace")]]
    body += table(["", "value"], [f for f in facts if f[1] is not None])
    if p.get("warnings"):
        body += "<ul>" + "".join(f'<li class="warn">{fmt(w)}</li>' for w in p["warnings"]) + "</ul>"
    if p.get("epochs"):
        body += image(figure_png(profile_figure(p["epochs"])), "step time by phase per epoch; samples per second")
    return "profile", "Profile", body


def compression(run: RunFiles) -> tuple[str, str, str]:
    c = run.compression
    if not c or not c.get("variants"):
        return "compression", "Compression", not_available("no compression.json in the run directory")
    cols = ["name", "val_metric", "test_metric", "drop", "size_bytes", "nonzero_params", "latency_ms"]
    rows = [[v.get(k) for k in cols] for v in c["variants"]]
    chosen = ["chosen" if v.get("name") == c.get("chosen") else "" for v in c["variants"]]
    body = table(cols, rows, row_class=chosen)
    if c.get("chosen"):
        body += para(f"Chosen: {c['chosen']}" + (f" (saved in {c['chosen_dir']})" if c.get("chosen_dir") else ""))
    return "compression", "Compression", body


def embedding(run: RunFiles) -> tuple[str, str, str]:
    """`nnrecipe embed`'s measures and its t-SNE picture (RUN/embedding/)."""
    e = run.embedding
    knn = e.get("knn") or {}
    rows = [["features", f"{e.get('features')}, {e.get('rows')} rows × {e.get('dim')} ({e.get('source')})"],
            ["PCA explained variance (first 2)", sum((e.get("explained_variance") or [])[:2])],
            ["k-means k (by silhouette)", e.get("k")], ["silhouette", e.get("silhouette")],
            ["adjusted Rand index vs labels", e.get("ari")],
            [f"k-NN accuracy ({knn.get('neighbors')}-NN, {knn.get('folds')}-fold CV)" if knn else "k-NN accuracy",
             e.get("knn_accuracy")]]
    body = table(["", "value"], rows)
    png = run.dir / "embedding" / "tsne.png"
    if png.is_file():
        body += image(png.read_bytes(), "t-SNE of the features, by label and by k-means cluster")
    else:
        body += not_available("no embedding/tsne.png")
    return "embedding", "Embedding", body


def members(run: RunFiles) -> tuple[str, str, str]:
    keys = headline_keys(run)
    rows = [[i, m.get("seed"), m.get("epochs_run")] + [(m.get("test") or {}).get(k) for k in keys]
            for i, m in enumerate(run.metrics.get("members") or [])]
    ens = run.metrics.get("test") or {}
    rows.append(["ensemble", None, None] + [ens.get(k) for k in keys])
    return "members", "Ensemble members", table(["member", "seed", "epochs"] + [f"test {k}" for k in keys], rows)
