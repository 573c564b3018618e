"""`nnrecipe export RUN --format onnx`: a trained run as one ONNX graph, checked against torch.

The graph takes what `nnrecipe predict` takes, not the model's internal input, because the run's
input transform is folded in as a torch wrapper before export:

    features [N, D] float32 (the training columns, in order)      z = (x − μ)/σ  [→ W(z − μ_w)]
    images   [N, C, H, W] float32 (pixels as loaded: ÷255 for     z_c = (x_c − μ_c)/σ_c  [→ ZCA | patch ZCA]
             image files, .npz values as stored; training size)
    tokens   [N, T] int64 (vocabulary ids from model.json's sequence.src_vocab, right-padded with 0)

(σ = 0 columns/channels are only centred, as in `nnrecipe.data.preprocess`). Outputs:

    classification  logits [N, K] = model(z);  probabilities [N, K] = softmax(logits / T)
                    (T: the run's fitted temperature, so these equal predict's prob_<class> columns)
    regression      output [N, 1] = model(z) (standardized target);  prediction [N] = output·σ_y + μ_y

Batch (and, for tokens, sequence length) axes are dynamic; the graph does not truncate, so cut
token sequences to ``text.max_len`` as predict does. The transform runs in float32 in the graph
(predict computes it in float64), so the parity check compares the ONNX graph run by onnxruntime
(CPUExecutionProvider) with the predict path itself — float64 transform, then torch — on the run's
test split rebuilt from config.yaml (same seed and split as `nnrecipe calibrate`), or on rows drawn
at the stored training statistics when that data is no longer there:

    max_abs_diff = max |logits_onnx − logits_torch|   over rows and classes; must be ≤ 1e-4

checked on the whole batch and again on a single row (and, for tokens, on the first half of the
steps), so a batch size or length frozen into the graph by tracing is caught.

Recurrent classifiers are packed (`pack_padded_sequence`) in torch, which ONNX cannot express; the
export replaces packing by running the cell over the padded sequence and taking the top layer's
output at step length − 1 — identical for a unidirectional network, where steps after the length
never reach that output. A bidirectional one runs each layer's backward direction over the sequence
reversed within its length (a gather), so it never reads the padding before a real token either.
Language models and seq2seq (decoding loops) and ensembles are refused.

Exporter: torch.onnx.export with dynamo=False (TorchScript tracing, opset 18). Its dynamo=True
default also exports every family here with the same parity, but spends 5–100 s per model in its
decomposition pass (recurrent cells are the slowest) against about a second, and needs
onnxscript. torch deprecates the traced path; when a torch beyond the pinned range drops it, switch
`_export` to dynamo=True with ``dynamic_shapes`` (torch.export.Dim) instead of ``dynamic_axes``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnrecipe.config import resolve_config
from nnrecipe.data import encode_labels, regression_targets, split_indices
from nnrecipe.errors import UserError
from nnrecipe.post.temperature import apply_temperature
from nnrecipe.prepare import _load
from nnrecipe.run import Run
from nnrecipe.tasks import open_run
from nnrecipe.sequence_data import prepare_sequences
from nnrecipe.training.loop import predict_logits

TOLERANCE = 1e-4  # max |Δ logits| accepted for a float32 graph
OPSET = 18  # ONNX Runtime ≥ 1.14 runs it
MAX_CHECK_ROWS = 512
RECURRENT = ("rnn", "lstm", "gru")
INSTALL = 'pip install "nnrecipe[export]"'


def _buffer(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float32)


def _safe(std) -> np.ndarray:
    std = np.asarray(std, dtype=np.float64)
    return np.where(std > 0, std, 1.0)


class InputTransformModule(nn.Module):
    """The run's `InputTransform.apply` as torch ops (float32), so it becomes part of the graph."""

    def __init__(self, transform):
        super().__init__()
        self.image_shape = transform.image_shape
        norm = transform.standardizer if transform.image_shape is None else transform.channel
        shape = (1, -1) if self.image_shape is None else (1, -1, 1, 1)
        self.register_buffer("mean", _buffer(norm.mean).view(shape))
        self.register_buffer("std", _buffer(_safe(norm.std)).view(shape))
        self.whiten = transform.whitener is not None
        if self.whiten:
            self.register_buffer("w_mean", _buffer(transform.whitener.mean))
            self.register_buffer("w_matrix_t", _buffer(transform.whitener.matrix.T.copy()))
        self.patch = transform.patch is not None
        if self.patch:
            weight, bias = transform.patch
            # apply_patch_zca pads with the channel means μ_c, recovered from bias = −W_p μ_p
            mean_patch = np.linalg.solve(weight.reshape(weight.shape[0], -1), -bias)
            c, k = weight.shape[1], weight.shape[2]
            self.pad = (k - 1) // 2
            self.register_buffer("p_weight", _buffer(weight))
            self.register_buffer("p_bias", _buffer(bias))
            self.register_buffer("p_mean", _buffer(mean_patch.reshape(c, k, k).mean(axis=(1, 2))).view(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        if self.whiten:
            flat = (z.flatten(1) - self.w_mean) @ self.w_matrix_t
            z = flat if self.image_shape is None else flat.view(z.shape)
        if self.patch:
            p = self.pad
            z = F.conv2d(F.pad(z - self.p_mean, (p, p, p, p)) + self.p_mean, self.p_weight, self.p_bias)
        return z


def _one_direction(rnn: nn.RNNBase, layer: int, suffix: str) -> nn.RNNBase:
    """A one-layer, one-direction copy of `rnn`'s layer `layer` (suffix "" forward, "_reverse" backward)."""
    size = rnn.input_size if layer == 0 else rnn.hidden_size * 2
    cell = {"LSTM": nn.LSTM, "GRU": nn.GRU}.get(rnn.mode)
    one = cell(size, rnn.hidden_size, batch_first=True) if cell else nn.RNN(
        size, rnn.hidden_size, batch_first=True, nonlinearity="relu" if rnn.mode == "RNN_RELU" else "tanh")
    with torch.no_grad():
        for name, p in one.named_parameters():  # weight_ih_l0 ← weight_ih_l{layer}{suffix}, ...
            p.copy_(getattr(rnn, name.replace("_l0", f"_l{layer}{suffix}")))
    return one


def _at(out: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """out[b, steps[b]] for out [B, T, F]."""
    return out.gather(1, steps.view(-1, 1, 1).expand(-1, 1, out.shape[-1])).squeeze(1)


class LastStepRecurrent(nn.Module):
    """A many-to-one `RecurrentNet` without packing (module docstring). Forward direction: the top
    layer's output at step length − 1. Bidirectional: per layer, the backward direction runs forward
    over each sequence reversed within its length, r[t] = x[L − 1 − t] for t < L (the padding stays
    at the end, so it is read after every real token), and its outputs are reversed back; its final
    state is then the output at t = 0 — what packing gives."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        rnn = net.rnn
        self.layers = nn.ModuleList(nn.ModuleList(_one_direction(rnn, layer, suffix) for suffix in ("", "_reverse"))
                                    for layer in range(rnn.num_layers)) if rnn.bidirectional else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = (tokens != 0).sum(dim=1).clamp(min=1)  # as lengths_from_padding: pad id 0
        x = self.net.embed_inputs(tokens)
        if self.layers is None:
            return self.net.head(_at(self.net.rnn(x)[0], lengths - 1))
        t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        order = torch.where(t < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - t, t)  # its own inverse
        flip = order.unsqueeze(-1)
        for forward, backward in self.layers:
            reverse = backward(x.gather(1, flip.expand(-1, -1, x.shape[-1])))[0]
            x = torch.cat([forward(x)[0], reverse.gather(1, flip.expand(-1, -1, reverse.shape[-1]))], dim=-1)
        h = self.net.hidden
        return self.net.head(torch.cat([_at(x[..., :h], lengths - 1), x[:, 0, h:]], dim=-1))


class ExportWrapper(nn.Module):
    """raw input → (logits, probabilities) or (output, prediction), as documented above."""

    def __init__(self, model: nn.Module, transform, *, classification: bool, temperature: float = 1.0,
                 target_scaler: dict | None = None):
        super().__init__()
        self.model = model
        self.transform = InputTransformModule(transform) if transform is not None else None
        self.classification = classification
        self.temperature = float(temperature)
        scaler = target_scaler or {"mean": 0.0, "std": 1.0}
        self.y_mean, self.y_std = float(scaler["mean"]), float(scaler["std"] or 1.0)

    def forward(self, x: torch.Tensor):
        out = self.model(self.transform(x) if self.transform is not None else x)
        if self.classification:
            return out, torch.softmax(out / self.temperature, dim=-1)
        return out, out.squeeze(-1) * self.y_std + self.y_mean


def _check_supported(run: Run) -> str:
    """The input kind ("features" | "images" | "tokens"), or a UserError for what cannot be exported."""
    where = str(run.dir)
    if run.members:
        raise UserError("an ensemble cannot be exported as one ONNX model", where,
                        "export each member (RUN/members/0, RUN/members/1, ...) and average their probabilities")
    if "sequence" not in run.info:
        return "features" if run.image_shape is None else "images"
    kind = run.info["sequence"]["kind"]
    if kind != "classify":
        what = "language-model" if kind == "lm" else kind
        raise UserError(f"a {what} run generates token by token in a loop, which this export does not cover",
                        where, "export a tabular, image or sequence-classification run")
    return "tokens"


def _graph_model(run: Run) -> nn.Module:
    arch = run.info["architecture"]
    model = LastStepRecurrent(run.model) if arch["name"] in RECURRENT else run.model
    return ExportWrapper(model, run.transform, classification=run.task == "classification",
                         temperature=run.temperature, target_scaler=run.info.get("target_scaler")).eval()


def _reference_rows(run: Run, kind: str) -> tuple[np.ndarray, str]:
    """Raw inputs for the parity check: the run's test split, or synthetic rows at the training scale."""
    try:
        cfg = resolve_config(extra=run.config)
        if kind == "tokens":
            return prepare_sequences(cfg).tensors["test"][0][:MAX_CHECK_ROWS].numpy(), "test split"
        return _raw_test_rows(run, cfg)[:MAX_CHECK_ROWS], "test split"
    except (UserError, OSError, ValueError, KeyError):
        pass  # the data moved or changed: fall back to rows drawn at the training statistics' scale
    g = np.random.default_rng(0)
    n = 256
    if kind == "tokens":
        vocab = len(run.info["sequence"]["src_vocab"]["tokens"])
        ids = g.integers(1, vocab, size=(n, 32))
        ids[np.arange(32)[None, :] >= g.integers(1, 33, size=(n, 1))] = 0
        return ids, "synthetic token ids"
    t = run.transform
    norm = t.standardizer if t.image_shape is None else t.channel
    mean, std = np.asarray(norm.mean), _safe(norm.std)
    if t.image_shape is None:
        return mean + std * g.standard_normal((n, len(mean))), "synthetic rows (training mean, std)"
    c, h, w = t.image_shape
    return (mean[:, None, None] + std[:, None, None] * g.standard_normal((n, c, h, w)),
            "synthetic images (training channel mean, std)")


def _raw_test_rows(run: Run, cfg) -> np.ndarray:
    """The untransformed test rows of the run, split as `nnrecipe.prepare.prepare_data` splits them."""
    d = cfg.data
    if d.test_data:
        X = _load(d.test_data, d, d.target or run.info.get("target_name")).X
    else:
        table = _load(d.source, d, d.target)
        classification = run.task == "classification"
        y = encode_labels(table.y)[0] if classification else regression_targets(table.y)
        test = split_indices(len(table.X), y=y if classification else None, val_fraction=d.val_fraction,
                             test_fraction=d.test_fraction, seed=cfg.train.seed, stratify=classification)[2]
        X = table.X[test]
    if run.image_shape is not None:
        return X.reshape(len(X), *run.image_shape)
    return X


def _torch_reference(run: Run, kind: str, X: np.ndarray) -> list[np.ndarray]:
    """What `nnrecipe predict` computes: float64 transform, then the torch model, then softmax(z/T)."""
    if kind == "tokens":
        logits = predict_logits(run.model, torch.as_tensor(X, dtype=torch.long)).double()
    else:
        logits = run.logits(X).double()
    if run.task == "classification":
        return [logits.numpy(), apply_temperature(logits, run.temperature).numpy()]
    return [logits.numpy(), run.predict(X)]


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise UserError(f"ONNX export needs the onnx and onnxruntime packages ({exc.name} is missing)",
                        "python environment", INSTALL) from None
    return onnx, onnxruntime


@contextmanager
def _quiet_exporter():
    """Silence the exporter's chatter (its deprecation notice, tracer warnings about shape checks that
    the parity check covers): the CLI prints the result, and a real failure still raises."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export(wrapper: nn.Module, kind: str, example: torch.Tensor, path: Path, names: list[str]) -> None:
    axes = {0: "batch", 1: "length"} if kind == "tokens" else {0: "batch"}
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(wrapper, (example,), str(path), input_names=[kind], output_names=names,
                              dynamic_axes={kind: axes, **{n: {0: "batch"} for n in names}},
                              opset_version=OPSET, dynamo=False)
    except Exception as exc:  # the exporter raises many types; one error line is what the user can act on
        first = (str(exc).splitlines() or [""])[0][:200]
        raise UserError(f"torch.onnx.export failed ({type(exc).__name__}: {first})", "ONNX export",
                        "predict with nnrecipe instead, and report the model and torch version") from None


def _max_diffs(session, run: Run, kind: str, X: np.ndarray, names: list[str]) -> dict[str, float]:
    """max |onnx − torch| per output over the batch X, its first row alone and (tokens) half the steps."""
    batches = [X, X[:1]] + ([X[:, : max(1, X.shape[1] // 2)]] if kind == "tokens" else [])
    diffs = dict.fromkeys(names, 0.0)
    for batch in batches:
        got = session.run(names, {kind: np.asarray(batch, dtype=np.int64 if kind == "tokens" else np.float32)})
        for name, g, w in zip(names, got, _torch_reference(run, kind, batch)):
            diffs[name] = max(diffs[name], float(np.max(np.abs(g.astype(np.float64) - np.asarray(w)))))
    return diffs


def export_onnx(run_dir: str | Path, out: str | Path | None = None) -> dict:
    """Write RUN/model.onnx (or `out`) and export.json beside it; returns export.json's content.

    Raises UserError when the run cannot be exported, onnx/onnxruntime are missing, or the ONNX
    logits differ from torch's by more than 1e-4 (then nothing is written)."""
    onnx, ort = _require_onnx()
    run = open_run(run_dir, "export")
    kind = _check_supported(run)
    out = Path(out) if out is not None else Path(run_dir) / "model.onnx"
    if out.suffix.lower() != ".onnx":
        raise UserError(f"output '{out}' does not end in .onnx", "--out", "name the file like model.onnx")
    if not out.parent.is_dir():
        raise UserError(f"folder not found: {out.parent}", "--out", "create the folder first")
    X, source = _reference_rows(run, kind)
    names = ["logits", "probabilities"] if run.task == "classification" else ["output", "prediction"]
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        _export(_graph_model(run), kind, torch.as_tensor(X[:2], dtype=torch.long if kind == "tokens"
                                                         else torch.float32), tmp, names)
        diffs = _max_diffs(ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]), run, kind, X, names)
        if not diffs[names[0]] <= TOLERANCE:
            raise UserError(f"ONNX {names[0]} differ from torch by {diffs[names[0]]:.3g} (> {TOLERANCE:g})",
                            str(out), "predict with nnrecipe; the exported graph is not faithful for this model")
        opset = next(o.version for o in onnx.load(str(tmp)).opset_import if o.domain in ("", "ai.onnx"))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    report = {"format": "onnx", "path": str(out), "max_abs_diff": diffs[names[0]], "opset": int(opset),
              "inputs": [_input_spec(run, kind)], "outputs": _output_specs(run, names),
              "rows_checked": int(len(X)), "check_data": source, "max_abs_diff_by_output": diffs,
              "tolerance": TOLERANCE, "temperature": run.temperature, "class_names": run.class_names}
    (out.parent / "export.json").write_text(json.dumps(report, indent=2))
    return report


def _input_spec(run: Run, kind: str) -> dict:
    if kind == "tokens":
        return {"name": kind, "dtype": "int64", "shape": ["batch", "length"],
                "meaning": "token ids of model.json's sequence.src_vocab, right-padded with 0 (<pad>)"}
    shape = ["batch", run.transform.n_features] if kind == "features" else ["batch", *run.image_shape]
    what = "feature columns " + ", ".join(run.feature_names[:4]) + (" ..." if len(run.feature_names) > 4 else "") \
        if kind == "features" else "raw pixels, C×H×W as at training"
    return {"name": kind, "dtype": "float32", "shape": shape,
            "meaning": f"untransformed {what}; the run's input transform is inside the graph"}


def _output_specs(run: Run, names: list[str]) -> list[dict]:
    if run.task == "classification":
        k = len(run.class_names)
        return [{"name": names[0], "shape": ["batch", k], "meaning": "logits z, classes in class_names order"},
                {"name": names[1], "shape": ["batch", k],
                 "meaning": f"calibrated probabilities softmax(z / T), T = {run.temperature:.6g}"}]
    return [{"name": names[0], "shape": ["batch", 1], "meaning": "model output (standardized target)"},
            {"name": names[1], "shape": ["batch"], "meaning": "prediction in the target's original units"}]
