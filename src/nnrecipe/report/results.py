"""Result sections of a run report, by kind of run. Each returns (id, heading, HTML body).

- classification: test/val metrics, confusion matrix, ROC and precision-recall curves (from
  predictions.csv), calibration (reliability before/after temperature scaling), per-class table;
- regression: test/val metrics, residual plot (from predictions.csv);
- sequence: exact match / token accuracy / BLEU or perplexity, decoded examples, attention map;
- tagging: token accuracy, macro F1 over tags, entity P/R/F1, the tag confusion matrix and per-tag
  table (the classification sections, on tokens), entity scores per type and tagged examples;
- captioning: BLEU-1…4 and exact match, generated captions next to their references, and the
  sample images with their caption and the attention map of every word (plots/captions.png).

The per-class table re-expands the test confusion matrix M into label pairs (M[i, j] copies of
(i, j)) and hands them to `nnrecipe.metrics.per_class_table`: precision_c = M[c,c]/Σ_r M[r,c],
recall_c = M[c,c]/Σ_k M[c,k], F1_c = 2·M[c,c]/(Σ_r M[r,c] + Σ_k M[c,k]).
"""

from __future__ import annotations

import numpy as np

from nnrecipe.metrics import per_class_table
from nnrecipe.report.figures import residual_figure, roc_pr_figure, threshold_curves
from nnrecipe.report.markup import figure_png, fmt, image, not_available, para, stored_or_drawn, table
from nnrecipe.report.plots import plot_attention, plot_confusion_matrix, plot_reliability
from nnrecipe.report.runfiles import RunFiles

_MAX_EXAMPLES = 10
_NO_PREDICTIONS = "no predictions.csv in the run directory (sequence runs and runs older than the report have none)"
_METRIC_ROWS = {
    "classification": ["accuracy", "top_5_accuracy", "top_3_accuracy", "top_1_accuracy", "loss", "ece", "mce",
                       "f1_macro", "precision_macro", "recall_macro", "f1_weighted", "roc_auc", "roc_auc_macro",
                       "roc_auc_weighted", "average_precision", "average_precision_macro", "best_threshold",
                       "best_threshold_f1"],
    "regression": ["rmse", "mae", "r2", "mse"],
    "seq2seq": ["exact_match", "token_accuracy", "bleu"],
    "lm": ["perplexity", "token_accuracy", "tokens"],
    "tagging": ["token_accuracy", "f1_macro", "entity_f1", "entity_precision", "entity_recall", "loss", "tokens"],
    "captioning": ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "exact_match", "images", "references", "decoding"],
}


def _class_names(run: RunFiles) -> list[str]:
    test = run.metrics.get("test") or {}
    names = test.get("class_names") or run.model.get("class_names")
    return [str(n) for n in names] if names else [str(i) for i in range(len(test.get("confusion_matrix") or []))]


def test_metrics(run: RunFiles) -> tuple[str, str, str]:
    test, val = run.metrics.get("test") or {}, run.metrics.get("val") or {}
    keys = [k for k in _METRIC_ROWS.get(run.metrics.get("kind") or run.task or "", []) if k in test or k in val]
    if not keys:
        return "test-metrics", "Test metrics", not_available("metrics.json has no test metrics")
    rows = [[k, test.get(k), val.get(k)] for k in keys]
    body = table(["metric", "test", "validation"], rows)
    if "loss" in keys:
        body += para("loss = mean negative log-likelihood of calibrated probabilities; ECE over "
                     "equal-width confidence bins.")
    return "test-metrics", "Test metrics", body


def confusion(run: RunFiles) -> tuple[str, str, str]:
    cm = (run.metrics.get("test") or {}).get("confusion_matrix")
    if not cm:
        return "confusion-matrix", "Confusion matrix", not_available("metrics.json has no test confusion matrix")
    names = _class_names(run)
    png = stored_or_drawn(run.dir / "plots" / "confusion_matrix.png",
                          lambda p: plot_confusion_matrix(cm, names, p))
    return "confusion-matrix", "Confusion matrix", image(png, "test confusion matrix (rows: true, columns: predicted)")


def roc_pr(run: RunFiles) -> tuple[str, str, str]:
    head = "ROC and precision-recall curves"
    pred = run.predictions
    if pred is None or "probs" not in pred:
        return "roc-pr", head, not_available(_NO_PREDICTIONS)
    names = pred["class_names"]
    summary = threshold_curves(pred["y_true"], pred["probs"], names)
    if not summary["curves"]:
        return "roc-pr", head, not_available("the test split holds a single class")
    binary = len(names) == 2
    rows = [[c["name"], c["positives"], c["auc"], c["ap"]] for c in summary["curves"]]
    body = image(figure_png(roc_pr_figure(summary, binary=binary)), "ROC and precision-recall curves")
    label = f"ROC AUC (positive class {names[1]})" if binary else "macro ROC AUC (one-vs-rest)"
    body += para(f"{label}: {fmt(summary['macro_auc'])}")
    body += table(["class", "test positives", "ROC AUC", "average precision"], rows)
    if summary["skipped"]:
        body += para(f"No curve for {', '.join(summary['skipped'])}: absent from the test split "
                     "(its AUC is undefined).", "na")
    return "roc-pr", head, body


def calibration(run: RunFiles) -> tuple[str, str, str]:
    cal = run.metrics.get("calibration")
    if not cal or not cal.get("reliability_before"):
        why = "an ensemble calibrates each member" if run.members else "calibration.temperature was off"
        return "calibration", "Calibration", not_available(f"metrics.json has no calibration block ({why})")
    t = cal.get("temperature", 1.0)
    png = stored_or_drawn(run.dir / "plots" / "reliability.png",
                          lambda p: plot_reliability(cal["reliability_before"], cal.get("reliability_after"), p,
                                                     temperature=t))
    rows = [[name.upper(), cal.get(f"{name}_before"), cal.get(f"{name}_after")] for name in ("nll", "ece", "mce")]
    body = para(f"Temperature T = {fmt(t)} fitted on the validation split (softmax(z/T)).")
    body += table(["validation metric", "before (T = 1)", "after"], rows) + image(png, "reliability diagram")
    if cal.get("note"):
        body += para(str(cal["note"]), "warn")
    return "calibration", "Calibration", body


def per_class(run: RunFiles) -> tuple[str, str, str]:
    cm = (run.metrics.get("test") or {}).get("confusion_matrix")
    if not cm:
        return "per-class", "Per-class metrics", not_available("metrics.json has no test confusion matrix")
    counts = np.asarray(cm, dtype=int)
    k = counts.shape[0]
    true, pred = np.repeat(np.arange(k), k), np.tile(np.arange(k), k)
    reps = counts.reshape(-1)
    rows = per_class_table(np.repeat(true, reps), np.repeat(pred, reps), k, _class_names(run))
    cols = ["class", "precision", "recall", "f1", "support"]
    worst = min(range(k), key=lambda c: rows[c]["f1"])
    marks = ["chosen" if c == worst else "" for c in range(k)]
    body = table(cols, [[r[c] for c in cols] for r in rows], row_class=marks)
    return "per-class", "Per-class metrics", body + para(f"Lowest F1 (highlighted): class {rows[worst]['class']}.")


def residuals(run: RunFiles) -> tuple[str, str, str]:
    pred = run.predictions
    if pred is None or "prediction" not in pred:
        return "residuals", "Residuals", not_available(_NO_PREDICTIONS)
    png = figure_png(residual_figure(pred["y_true"], pred["prediction"]))
    r = pred["y_true"] - pred["prediction"]
    body = image(png, "residuals against predictions")
    return "residuals", "Residuals", body + para(f"Residual mean {fmt(float(r.mean()))}, standard deviation "
                                                 f"{fmt(float(r.std()))} over {len(r)} test rows.")


def sequence(run: RunFiles) -> tuple[str, str, str]:
    test = run.metrics.get("test") or {}
    body = ""
    if test.get("examples"):
        rows = [[e.get("source"), e.get("output"), e.get("target")] for e in test["examples"][:_MAX_EXAMPLES]]
        body += table(["source", "output", "target"], rows)
    sample = run.metrics.get("sample")
    if sample:
        body += para(f"Sample (temperature {sample.get('temperature')}):") + f"<pre>{fmt(sample.get('text'))}</pre>"
    example = test.get("attention_example")
    if example:
        png = stored_or_drawn(run.dir / "plots" / "attention.png",
                              lambda p: plot_attention(example["source"], example["output"], example["weights"], p))
        body += image(png, "attention weights of the first test example")
    return "sequence-examples", "Examples", body or not_available("metrics.json has no examples")


def tagging(run: RunFiles) -> tuple[str, str, str]:
    test = run.metrics.get("test") or {}
    body = ""
    per_type = test.get("entity_per_type")
    if per_type:
        rows = [[kind, r.get("precision"), r.get("recall"), r.get("f1"), r.get("support")] for kind, r in per_type.items()]
        body += para("Entities (BIO chunks, conlleval) per type, test split:")
        body += table(["type", "precision", "recall", "f1", "gold chunks"], rows)
    if test.get("examples"):
        rows = [[e.get("tokens"), e.get("predicted"), e.get("tags")] for e in test["examples"][:_MAX_EXAMPLES]]
        body += table(["tokens", "predicted tags", "gold tags"], rows)
    return "tagging", "Entities and examples", body or not_available("metrics.json has no tagging results")


def captioning(run: RunFiles) -> tuple[str, str, str]:
    test = run.metrics.get("test") or {}
    body = ""
    if test.get("examples"):
        rows = [[e.get("file"), e.get("caption"), " | ".join(e.get("references") or [])]
                for e in test["examples"][:_MAX_EXAMPLES]]
        body += table(["image", "generated caption", "references"], rows)
    png = run.dir / "plots" / "captions.png"
    if png.is_file():
        body += para("Sample test images: the generated caption, then where the decoder attended for each word "
                     "(α over the encoder's feature grid, stretched over the image).")
        body += image(png.read_bytes(), "test images with their caption and per-word attention maps")
    else:
        body += not_available("no plots/captions.png in the run directory (caption.samples = 0)")
    return "captioning", "Captions and attention", body
