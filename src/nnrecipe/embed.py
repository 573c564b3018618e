"""`nnrecipe embed RUN` and `nnrecipe.embed(...)`: maps of the representation a run learned.

The features F [N, D] come from the run, through the task registry (only tasks whose `commands`
hold ``embed`` answer; the others are refused in one place, `nnrecipe.tasks.check_command`):
- tabular, image and the user's own models, sequence classifiers: the input of the last
  ``nn.Linear`` in ``named_modules()`` order (the head of every built-in model: the penultimate
  activations, a sequence classifier's pooled representation), caught by a forward pre-hook; or,
  with ``layer=NAME``, the output of that module (flattened per row);
- autoencoders: the code z, a VAE's mean μ (or a named module of the encoder);
- word2vec: the target vectors W, one row per word (no labels; the words are the metadata).
The rows are the run's test split rebuilt from config.yaml as `fit` made it (held-out rows: the
representation is judged where it was not fitted), or ``data``: rows with the training columns
(labels used when present), images, or text (a CSV with the text column, labels when it has the
label column). More than ``samples`` rows: a seeded sample without replacement (word2vec: the
``samples`` most frequent words); everything below is measured on those rows.

What is measured is `nnrecipe.recipe.embedding` (PCA, t-SNE, UMAP when installed, k-means by
silhouette, ARI, k-NN accuracy). Written to ``out`` (default RUN/embedding/) in one rename, so a
failure leaves nothing half-written: embedding.json, embedding.csv (row, label, cluster, PCA,
t-SNE[, UMAP] coordinates), tsne.png / pca.png[ / umap.png] (by label | by cluster) and the
TensorBoard projector's files: tensors.tsv (F, tab-separated), metadata.tsv (a header row, then
name/label/cluster per row) and projector_config.pbtxt naming them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnrecipe.config import resolve_config
from nnrecipe.data import Vocab, load_table, pad_batch
from nnrecipe.errors import UserError
from nnrecipe.generative import load_images
from nnrecipe.recipe import embedding as maps
from nnrecipe.report.embedding_plot import plot_embedding
from nnrecipe.report.html import write_report
from nnrecipe.run import Run, read_run_info
from nnrecipe.sequence_inference import read_inputs
from nnrecipe.tabular_inference import read_features
from nnrecipe.tasks import check_command, task_for_info, task_name_of_run
from nnrecipe.training.data_loading import DatasetBatches
from nnrecipe.training.loop import call_model, predict_logits
from nnrecipe.word_vectors import load_vectors

DEFAULT_SAMPLES = 2000  # t-SNE's cost grows with N²; a picture of 2000 points is readable
DEFAULT_NEIGHBORS = 5
BATCH = 1024
OUT_NAME = "embedding"
_SHOWN_NAMES = 40  # module names listed when --layer names none of them


@dataclass
class Rows:
    """What `embed` measures: the model inputs (or, for word2vec, the vectors themselves)."""
    inputs: object  # a tensor of model inputs, or the features for word2vec
    labels: np.ndarray | None  # one label per row (strings), or None
    names: list[str]  # the projector's name of each row (row number or word)
    source: str


def _count(value, least: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= least


def _open(run_or_dir) -> tuple[Run | None, dict, str, str]:
    """(run or None for word2vec, model.json, family, where) after the registry's command check."""
    if isinstance(run_or_dir, Run):
        where = str(run_or_dir.dir or "run")
        check_command(where, run_or_dir.info, "embed")
        return run_or_dir, run_or_dir.info, task_name_of_run(run_or_dir.info), where
    if not isinstance(run_or_dir, (str, os.PathLike)):
        raise UserError(f"cannot embed a {type(run_or_dir).__name__}", "run", "pass a run directory or a loaded run")
    info = read_run_info(run_or_dir)
    check_command(run_or_dir, info, "embed")
    family = task_name_of_run(info)
    if family == "word2vec":  # no predictor to load: the vectors are read by themselves
        return None, info, family, str(run_or_dir)
    return task_for_info(info).load(Path(run_or_dir), info), info, family, str(run_or_dir)


def _class_labels(codes, class_names) -> np.ndarray | None:
    if codes is None or class_names is None:
        return None
    return np.asarray(class_names, dtype=object)[np.asarray(codes, dtype=np.int64)].astype(str)


def _given_labels(y) -> np.ndarray | None:
    return None if y is None else np.asarray(y).astype(str)


def _predictor_rows(run: Run, data) -> Rows:
    if data is None:
        X, y = task_for_info(run.info).rebuild_splits(run, None)["test"]
        if isinstance(X, DatasetBatches):
            raise UserError("a data.lazy run streams its images", str(run.dir),
                            "pass images to embed with --data (an image folder or .npz)")
        labels = _class_labels(y, run.class_names) if run.task == "classification" else None
        return Rows(X, labels, [str(i) for i in range(len(X))], "test split")
    try:  # labels are optional here; a real problem resurfaces in the unlabelled read
        X, y = read_features(run, str(data), labelled=True)
    except UserError:
        X, y = read_features(run, str(data), labelled=False)
    labels = _given_labels(y) if run.task == "classification" else None
    return Rows(torch.as_tensor(run.standardize(X), dtype=torch.float32), labels,
                [str(i) for i in range(len(X))], str(data))


def _text_labels(run: Run, source: str) -> np.ndarray | None:
    column = ((run.config or {}).get("text") or {}).get("label_column") or "label"
    if Path(source).suffix.lower() != ".csv":
        return None
    with open(source, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return np.asarray([r[column] for r in rows]).astype(str) if rows and column in rows[0] else None


def _sequence_rows(run: Run, data) -> Rows:
    kind = run.info["sequence"]["kind"]
    if kind != "classify":
        what = "a language model" if kind == "lm" else "a seq2seq model"
        raise UserError(f"{what} has one vector per token, not one per row", str(run.dir),
                        "embed a sequence classifier (or a tabular, image, autoencoder or word2vec run)")
    if data is None:
        X, y = task_for_info(run.info).rebuild_splits(run, None)["test"]
        return Rows(X, _class_labels(y, run.class_names), [str(i) for i in range(len(X))], "test split")
    texts = read_inputs(run, str(data))
    vocab = Vocab.from_dict(run.info["sequence"]["src_vocab"])
    max_len = resolve_config(extra=run.config).text.max_len
    X, _ = pad_batch([vocab.encode(t)[:max_len] or [1] for t in texts])
    return Rows(X, _text_labels(run, str(data)), [str(i) for i in range(len(texts))], str(data))


def _autoencoder_rows(run: Run, data) -> Rows:
    if data is None:
        images = load_images(resolve_config(extra=run.config), torch.device("cpu"))
        labels = _class_labels(images.y["test"], images.class_names) if images.y is not None else None
        X = images.X["test"]
        return Rows(X, labels, [str(i) for i in range(len(X))], "test split")
    c, h, w = run.info["image_shape"]
    table = load_table(str(data), require_target=False, image_size=(h, w), channels=c if c in (1, 3) else None)
    if table.image_shape is None or tuple(table.image_shape) != (c, h, w):
        raise UserError(f"this autoencoder takes {c}×{h}×{w} images", str(data),
                        "pass a folder of images or an .npz with X of shape N×C×H×W")
    lo, hi = run.info["pixel_range"]
    X = torch.as_tensor(np.clip((table.X - lo) / (hi - lo), 0, 1), dtype=torch.float32).reshape(-1, c, h, w)
    return Rows(X, _given_labels(table.y), [str(i) for i in range(len(X))], str(data))


def _rows(run: Run | None, family: str, where: str, data, layer) -> Rows:
    if family == "word2vec":
        for value, flag in ((data, "--data"), (layer, "--layer")):
            if value is not None:
                raise UserError(f"{flag} does not apply to a word2vec run", flag,
                                "leave it out: the word vectors are the features")
        vectors = load_vectors(where)
        return Rows(vectors.vectors.float().numpy(), None, list(vectors.words), "word vectors")
    if run.members or run.model is None:
        raise UserError("embed needs a single model, not an ensemble", where,
                        "pass one member's run, or a run trained with train.ensemble=1")
    if family == "autoencoder":
        return _autoencoder_rows(run, data)
    return _sequence_rows(run, data) if family == "sequence" else _predictor_rows(run, data)


def _choose(rows: Rows, samples: int, seed: int, family: str) -> Rows:
    n = len(rows.inputs)
    if n <= samples:
        return rows
    if family == "word2vec":  # the vocabulary is sorted by count: the most frequent words
        idx = np.arange(samples)
    else:
        idx = np.sort(np.random.default_rng(seed).choice(n, samples, replace=False))
    labels = rows.labels[idx] if rows.labels is not None else None
    return Rows(rows.inputs[torch.as_tensor(idx)] if torch.is_tensor(rows.inputs) else rows.inputs[idx],
                labels, [rows.names[i] for i in idx], f"{rows.source}, {samples} of {n} rows (seed {seed})")


def _named(model: nn.Module, layer: str | None) -> tuple[nn.Module, str]:
    modules = dict(model.named_modules())
    if layer is None:
        linear = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
        if not linear:
            raise UserError("the model has no nn.Linear layer to take the penultimate features from", "--layer",
                            "name a module: " + ", ".join([n for n in modules if n][:_SHOWN_NAMES]))
        return modules[linear[-1]], f"input of '{linear[-1]}' (the last Linear layer)"
    if layer not in modules or not layer:
        names = [n for n in modules if n]
        shown = ", ".join(names[:_SHOWN_NAMES]) + (f" and {len(names) - _SHOWN_NAMES} more"
                                                   if len(names) > _SHOWN_NAMES else "")
        raise UserError(f"no module named '{layer}' in the model", "--layer", f"name one of: {shown}")
    return modules[layer], f"output of '{layer}'"


def _first_tensor(value, layer: str) -> torch.Tensor:
    value = value[0] if isinstance(value, (tuple, list)) and value else value
    if not torch.is_tensor(value):
        raise UserError(f"module '{layer}' returns a {type(value).__name__}, not a tensor", "--layer",
                        "name a module whose output is a tensor")
    return value


def _hooked(model: nn.Module, X: torch.Tensor, *, layer: str | None, forward) -> tuple[np.ndarray, str]:
    """The features of `layer` (None: the last Linear's input) for every row of X, batch by batch."""
    module, what = _named(model, layer)
    caught: list[torch.Tensor] = []
    if layer is None:
        hook = module.register_forward_pre_hook(lambda m, args: caught.append(args[0].detach().flatten(1)))
    else:
        hook = module.register_forward_hook(lambda m, args, out: caught.append(
            _first_tensor(out, layer).detach().flatten(1)))
    try:
        with torch.no_grad():
            predict_logits(model, X, batch_size=BATCH, forward=forward)
    finally:
        hook.remove()
    batches = -(-len(X) // BATCH)
    if len(caught) != batches or sum(len(c) for c in caught) != len(X):
        name = layer or "the last Linear layer"
        raise UserError(f"{name} ran {len(caught)} times for {batches} batches, not once per row", "--layer",
                        "name a module that sees each row once (not a per-step cell)")
    return torch.cat(caught).float().cpu().numpy(), what


def _features(run: Run | None, family: str, rows: Rows, layer: str | None) -> tuple[np.ndarray, str]:
    if family == "word2vec":
        return np.asarray(rows.inputs, dtype=np.float32), "word vectors W (the input embedding)"
    model = run.model
    device = next(model.parameters(), torch.empty(0)).device
    X = rows.inputs.to(device)
    if family == "autoencoder":
        def encode(m, xb):  # z, or a VAE's mean μ
            return m.encode(xb)[0]

        if layer is None:
            with torch.no_grad():
                codes = predict_logits(model, X, batch_size=BATCH, forward=encode)
            return codes.float().cpu().numpy(), "the mean μ of q(z|x)" if model.variational else "the code z"
        return _hooked(model, X, layer=layer, forward=encode)
    return _hooked(model, X, layer=layer, forward=call_model)


def _measure(F: np.ndarray, labels: np.ndarray | None, *, seed: int, neighbors: int) -> tuple[dict, dict]:
    """(the JSON's measures, the 2-D maps and clusters)."""
    k, found, silhouettes = maps.clusters(F, seed=seed)
    result = {"explained_variance": maps.explained_variance(F), "k": k,
              "silhouette": silhouettes.get(k), "silhouettes": {str(c): s for c, s in silhouettes.items()},
              "ari": None, "knn_accuracy": None, "knn": None}
    if labels is not None:
        result["ari"] = maps.adjusted_rand(labels, found)
        folds = maps.knn_folds(labels)
        if folds:
            used = min(neighbors, len(F) - -(-len(F) // folds))  # at most the rows a training fold holds
            result["knn_accuracy"] = maps.knn_accuracy(F, labels, neighbors=used, folds=folds, seed=seed)
            result["knn"] = {"neighbors": used, "folds": folds}
    tsne, perplexity = maps.tsne_2d(F, seed=seed)
    result["tsne_perplexity"] = perplexity
    coords = {"pca": maps.pca_2d(F), "tsne": tsne, "umap": maps.umap_2d(F, seed=seed)}
    return result, {"coords": coords, "clusters": found}


def _tsv(values) -> str:
    return "\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in values)


def _write(tmp: Path, F: np.ndarray, rows: Rows, drawn: dict, title: str) -> list[str]:
    """Every file but embedding.json into `tmp`; returns their names."""
    coords, found = drawn["coords"], drawn["clusters"]
    methods = [m for m in ("pca", "tsne", "umap") if coords[m] is not None]
    header = ["name", "label", "cluster"] + [f"{m}_{i}" for m in methods for i in (1, 2)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i, name in enumerate(rows.names):
        label = rows.labels[i] if rows.labels is not None else ""
        writer.writerow([name, label, int(found[i])] + [f"{coords[m][i, j]:.6g}" for m in methods for j in (0, 1)])
    (tmp / "embedding.csv").write_text(buf.getvalue(), encoding="utf-8")
    np.savetxt(tmp / "tensors.tsv", F, delimiter="\t", fmt="%.7g")
    meta = [_tsv(["name", "label", "cluster"])] + [
        _tsv([name, rows.labels[i] if rows.labels is not None else "", int(found[i])])
        for i, name in enumerate(rows.names)]
    (tmp / "metadata.tsv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    (tmp / "projector_config.pbtxt").write_text(
        'embeddings {\n  tensor_name: "features"\n  tensor_path: "tensors.tsv"\n  metadata_path: "metadata.tsv"\n'
        f"  tensor_shape: {F.shape[0]}\n  tensor_shape: {F.shape[1]}\n}}\n", encoding="utf-8")
    names = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    plots = [plot_embedding(coords[m], labels=rows.labels, clusters=found, method=names[m], title=title,
                            out_png=tmp / f"{m}.png").name for m in methods]
    return ["embedding.csv", "tensors.tsv", "metadata.tsv", "projector_config.pbtxt", *plots]


def _replace(final: Path, write) -> None:
    """`write(tmp)` into a hidden sibling, then one rename onto `final` (an older one is replaced)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    try:
        write(tmp)
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _check(samples, neighbors, layer, out) -> None:
    if not _count(samples, 4):
        raise UserError(f"samples must be an integer >= 4, got {samples}", "--samples",
                        f"e.g. --samples 1000 (default {DEFAULT_SAMPLES})")
    if not _count(neighbors, 1):
        raise UserError(f"neighbors must be an integer >= 1, got {neighbors}", "--neighbors", "e.g. --neighbors 5")
    if layer is not None and not isinstance(layer, str):
        raise UserError(f"layer must be a module name, got a {type(layer).__name__}", "--layer", "e.g. --layer body.3")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out} is a file, not a directory", "--out", "name a directory, e.g. RUN/embedding")


def embed(run, data=None, *, layer: str | None = None, out: str | Path | None = None, seed: int = 0,
          samples: int = DEFAULT_SAMPLES, neighbors: int = DEFAULT_NEIGHBORS) -> dict:
    """Features of a run (see the module docstring) → PCA explained variance, k-means k by silhouette,
    ARI against the labels, k-NN accuracy, t-SNE (and UMAP) maps, written to `out` (default RUN/embedding/).

    `run`: a run directory or a loaded `Run`; `data`: rows to embed instead of the test split;
    `layer`: a name from ``model.named_modules()`` (default: the last Linear layer's input)."""
    started = time.perf_counter()
    _check(samples, neighbors, layer, out)
    run_obj, _, family, where = _open(run)
    if out is None:
        if isinstance(run, Run) and run.dir is None:
            raise UserError("a run without a directory needs out=", "out", "pass out='some/dir'")
        out = Path(where) / OUT_NAME
    rows = _choose(_rows(run_obj, family, where, data, layer), samples, seed, family)
    if len(rows.names) < 4:
        raise UserError(f"{len(rows.names)} rows are too few to embed", str(data or where), "pass at least 4 rows")
    F, what = _features(run_obj, family, rows, layer)
    if not np.isfinite(F).all():
        raise UserError("the features hold NaN or infinite values", where, "check the run (did its training diverge?)")
    result, drawn = _measure(F, rows.labels, seed=seed, neighbors=neighbors)
    title = f"{Path(where).name}: {what}, {F.shape[0]} rows × {F.shape[1]}"
    result = {"run": where, "source": rows.source, "features": what, "rows": int(F.shape[0]), "dim": int(F.shape[1]),
              "labels": rows.labels is not None, "seed": seed, **result,
              "umap": drawn["coords"]["umap"] is not None, "out": str(out)}

    def write(tmp: Path) -> None:
        result["files"] = ["embedding.json", *_write(tmp, F, rows, drawn, title)]
        result["seconds"] = time.perf_counter() - started
        (tmp / "embedding.json").write_text(json.dumps(result, indent=2), encoding="utf-8")

    _replace(Path(out), write)
    if Path(out).resolve() == (Path(where) / OUT_NAME).resolve() and (Path(where) / "report.html").exists():
        write_report(where)  # the run's report gains the embedding section
    return result
