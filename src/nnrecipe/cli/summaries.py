"""Console text of results: what `nnrecipe fit`, `summary` and `evaluate --analogies`
print, made from the dicts the library returns (metrics.json, `describe_model`,
`evaluate_analogies`). The library itself returns data and never writes to the console
(tests/test_layers.py enforces it); every formatter here takes such a dict and returns text.
"""

from __future__ import annotations

from nnrecipe.models.summary import human


def format_generative_fit(m: dict) -> str:
    """The lines `nnrecipe fit` prints after ``run: DIR`` for an autoencoder, VAE or GAN run
    (`m` is its metrics.json)."""
    lines = [f"epochs: {m['epochs_run']}, {m['train_seconds']:.1f} s"]
    test = m.get("test") or {}
    if m["model"] == "vae":
        lines.append(f"test: ELBO {test['elbo']:.2f} nats (at init {test['elbo_at_init']:.2f}), "
                     f"reconstruction {test['reconstruction']:.2f}, KL {test['kl']:.2f}, "
                     f"active units {test['active_units']}/{test['latent_dim']}")
    elif m["model"] == "autoencoder":
        lines.append(f"test: reconstruction BCE {test['reconstruction_bce']:.2f} nats/image, "
                     f"MSE {test['reconstruction_mse']:.4f}/pixel")
    else:
        last = m["final"]
        lines.append(f"last epoch: D loss {last['d_loss']:.3f}, G loss {last['g_loss']:.3f}, "
                     f"D(x) {last['d_real']:.3f}, D(G(z)) {last['d_fake']:.3f}")
    scores = m.get("scores")
    if scores:
        lines.append(f"judge ({scores['judge']['model']}, test accuracy {scores['judge']['test_accuracy']:.3f}):")
        for name in ("generated", "real", "noise"):
            s = scores[name]
            lines.append(f"  {name:9s} FD {s['frechet_distance']:8.2f}  IS {s['inception_score']:.2f}  "
                         f"class entropy {s['class_entropy']:.2f}/{s['max_class_entropy']:.2f}  "
                         f"confidence {s['mean_confidence']:.3f}")
    lines.append("plots: " + ", ".join(m.get("plots", [])))
    return "\n".join(lines)


def _analogy_line(name: str, r: dict) -> str:
    acc = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
    return f"{name}: accuracy {acc} ({r['correct']}/{r['answered']} answered, {r['skipped']} skipped)"


def format_analogy_accuracy(result: dict) -> str:
    """`evaluate_analogies`' result (or metrics.json's ``analogies``): overall, then one indented
    line per section."""
    lines = [_analogy_line(f"analogies ({result['file']})", result["overall"])]
    lines += ["  " + _analogy_line(name, r) for name, r in result["sections"].items()]
    return "\n".join(lines)


def format_word2vec_fit(m: dict) -> str:
    """The lines `nnrecipe fit` prints after ``run: DIR`` for a word2vec run (`m`: metrics.json)."""
    lines = [f"word2vec {m['architecture']}: {m['vocab_size']} words x {m['dim']}, {m['corpus_words']:,} corpus "
             f"words x {m['epochs_run']} epochs in {m['train_seconds']:.1f} s: {m['words_per_second']:,.0f} words/s",
             f"final loss {m['final_loss']:.4f} per {m['examples'][:-1]}"]
    if m.get("analogies"):
        lines.append(format_analogy_accuracy(m["analogies"]))
    return "\n".join(lines)


def _shape(shape) -> str:
    return "-" if shape is None else "×".join(str(d) for d in shape) or "scalar"


def format_model_summary(result: dict) -> str:
    """`nnrecipe summary`: `summarize`/`describe_model`'s result as an aligned text table (layer,
    type, output shape, params, MACs), exact totals at the bottom."""
    header = ("layer", "type", "output", "params", "MACs")
    body = [(r["name"] or "(model)", r["type"], _shape(r["output_shape"]), f"{r['params']:,}", human(r["macs"]))
            for r in result["layers"]]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row) -> str:
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    lines = []
    if "model" in result:
        shape = "×".join(str(d) for d in result.get("input_shape", []))
        lines.append(f"model: {result['model']}" + (f"  input: {shape}" if shape else ""))
    lines += [line(header), rule, *map(line, body), rule]
    total, trainable, macs = result["total_params"], result["trainable_params"], result["total_macs"]
    lines += [f"total params:         {total:,} ({human(total)})",
              f"trainable params:     {trainable:,} ({human(trainable)})",
              f"non-trainable params: {total - trainable:,}",
              f"MACs per sample:      {macs:,} ({human(macs)}; FLOPs ≈ 2·MACs)"]
    return "\n".join(lines)

