"""Console text of results: what `nnrecipe fit`, `summary`, `doctor` and `evaluate --analogies`
print, made from the dicts the library returns (metrics.json, `describe_model`, doctor.json,
`evaluate_analogies`). The library itself returns data and never writes to the console
(tests/test_layers.py enforces it); every formatter here takes such a dict and returns text.
"""

from __future__ import annotations

from pathlib import Path

from nnrecipe.models.summary import human


def format_tagging_fit(m: dict) -> str:
    """The lines `nnrecipe fit` prints after ``run: DIR`` for a sequence-tagging run (metrics.json)."""
    test = m["test"]
    entity = (f"  entity P/R/F1 {test['entity_precision']:.4f}/{test['entity_recall']:.4f}/{test['entity_f1']:.4f}"
              if "entity_f1" in test else "")
    lines = [f"epochs: {m['epochs_run']} (best {m['best_epoch']}), {m['train_seconds']:.1f} s",
             f"test: token accuracy {test['token_accuracy']:.4f}  tag f1_macro {test['f1_macro']:.4f}{entity}  "
             f"({test['sentences']} sentences, {test['tokens']} tokens)"]
    for ex in test["examples"][:2]:
        lines += [f"  {ex['tokens']}", f"  -> {ex['predicted']} (gold {ex['tags']})"]
    diag = m.get("diagnosis")
    if diag:
        lines.append(f"curves: {diag['verdict']} ({'; '.join(diag['reasons'])}) -> {diag['advice']}")
    return "\n".join(lines)


def format_captioning_fit(m: dict) -> str:
    """The lines `nnrecipe fit` prints after ``run: DIR`` for an image captioner (metrics.json)."""
    test = m["test"]
    lines = [f"epochs: {m['epochs_run']} (best {m['best_epoch']}), {m['train_seconds']:.1f} s; "
             f"vocabulary {m['vocab_size']} words, attention over a {'×'.join(map(str, m['grid']))} grid",
             f"test: BLEU-1 {test['bleu_1']:.2f}  BLEU-2 {test['bleu_2']:.2f}  BLEU-3 {test['bleu_3']:.2f}  "
             f"BLEU-4 {test['bleu_4']:.2f}  exact match {test['exact_match']:.4f}  "
             f"({test['images']} images, {test['decoding']})"]
    lines += [f"  {ex['file']}: {ex['caption']!r} (references: {' | '.join(ex['references'][:2])})"
              for ex in test["examples"][:3]]
    diag = m.get("diagnosis")
    if diag:
        lines.append(f"curves: {diag['verdict']} ({'; '.join(diag['reasons'])}) -> {diag['advice']}")
    return "\n".join(lines)


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


def _doctor_line(step: str, ok: bool, detail: str) -> str:
    return f"{'ok  ' if ok else 'WARN'} {step}: {detail}"


def format_doctor_report(report: dict) -> str:
    """`nnrecipe doctor`: one line per step (``ok  `` or ``WARN``), the search's trials best first,
    and the suggested next command, from `doctor`'s report (doctor.json plus ``dir``)."""
    il, acts, of = report["initial_loss"], report["activations_summary"], report["overfit_small"]
    search, diag = report["search"], report["diagnosis"]
    best = search["best"]
    lines = [_doctor_line("1 initial loss", il["ok"], f"{il['measured']:.3f} vs expected {il['expected']:.3f}"),
             _doctor_line("2 activations", acts["verdict"] == "healthy",
                          f"{acts['verdict']}" + (f" ({acts['fix']})" if acts.get("fix") else "")),
             _doctor_line("3 overfit small sample", of["passed"], f"{of['iterations']} iterations"
                          + (f"; {of['diagnosis']}" if of.get("diagnosis") else "")),
             _doctor_line("4 LR range test", True, f"suggested lr {report['lr_find']['suggested_lr']:.2e} "
                          f"(with weight decay {report['lr_find']['weight_decay']:g})"),
             f"  {'trial':>5}  {'lr':>9}  {'weight_decay':>12}  {'val loss':>9}  state"]
    for t in sorted(search["trials"], key=lambda t: (t["value"] is None, t["value"] or 0.0)):
        value = "-" if t["value"] is None else f"{t['value']:.4f}"
        lines.append(f"  {t['number']:>5}  {t['lr']:>9.2e}  {t['weight_decay']:>12g}  {value:>9}  {t['state'].lower()}")
    lines += [_doctor_line("5 coarse search", True, f"best lr {best['lr']:.2e}, weight_decay {best['weight_decay']:g} "
                           f"(val loss {best['value']:.4f}, {len(search['trials'])} trials)"),
              _doctor_line("6 curve diagnosis", diag["verdict"] == "healthy", f"{diag['verdict']}: {diag['advice']}")]
    curv = report.get("curvature")
    if curv:
        lines.append(_doctor_line("7 sharpness at init", not curv["past_edge_of_stability"],
                                  f"lambda_max {curv['lambda_max']:.4g}, x best lr = {curv['lambda_max_times_lr']:.3g}"
                                  + (f" ({curv['note']})" if curv["note"] else " (< 2: below the edge of stability)")))
    lines += [f"next: nnrecipe fit --config {Path(report['dir']) / 'best.yaml'}"]
    return "\n".join(lines)


def format_profile(p: dict) -> str:
    """`nnrecipe fit --profile`: the share of the step time per phase, throughput, peak memory."""
    phases = {k[: -len("_seconds")]: v for k, v in p.items() if k.endswith("_seconds") and v}
    busy = sum(phases.values()) or 1.0
    shares = "  ".join(f"{k} {v / busy:.0%}" for k, v in phases.items())
    rate = f"{p['samples_per_second']:,.0f} samples/s" if p.get("samples_per_second") else "no steps"
    memory = "".join(f", peak {name} {p[key]:,.0f} MiB" for name, key in (("RSS", "peak_rss_mb"), ("CUDA", "peak_cuda_mb"))
                     if p.get(key) is not None)
    lines = [f"profile: {shares} of {busy:.2f} s of steps; {rate}{memory}"]
    if p.get("trace"):
        lines.append(f"profile trace: {p['trace']} (chrome://tracing or Perfetto), top operators in profile/operators.txt")
    return "\n".join(lines + list(p.get("warnings") or []))


def format_curvature(r: dict) -> str:
    """`nnrecipe curvature`: the spectrum of `nnrecipe.curvature`'s result."""
    top = ", ".join(f"{v:.4g}" for v in r["eigenvalues"])
    kappa = f"{r['condition_number']:.4g}" if r["condition_number"] is not None else "undefined (no positive eigenvalue)"
    return "\n".join([
        f"Hessian of the loss ({r['loss']}) over {r['samples']} rows of {r['source']}, {r['parameters']:,} parameters",
        f"top-{len(r['eigenvalues'])} eigenvalues: {top}",
        f"lambda_min: {r['lambda_min']:.4g}",
        f"trace: {r['trace']:.4g} ± {r['trace_stderr']:.2g} (Hutchinson, {r['trace_probes']} probes; "
        f"SLQ {r['density']['trace']:.4g})",
        f"condition number: {kappa} ({r['condition_estimate']})",
        f"cost: {r['hvps']} Hessian-vector products ({r['hvps_eigenvalues']} Lanczos, {r['hvps_trace']} trace, "
        f"{r['hvps_density']} density), {r['seconds']:.2f} s"])


def format_embedding(r: dict) -> str:
    """`nnrecipe embed`: the measures of `nnrecipe.embed`'s result and where the files went."""
    ev = r["explained_variance"]
    shown = ", ".join(f"{v:.3f}" for v in ev[:5])
    sil = f"{r['silhouette']:.3f}" if r["silhouette"] is not None else "undefined"
    lines = [f"features: {r['features']}, {r['rows']} rows x {r['dim']} ({r['source']})",
             f"PCA explained variance: {shown}{' ...' if len(ev) > 5 else ''} (first 2: {sum(ev[:2]):.1%})",
             f"k-means: k = {r['k']} by silhouette ({sil})"]
    if r["labels"]:
        ari = f"{r['ari']:.3f}" if r["ari"] is not None else "-"
        knn = (f"{r['knn_accuracy']:.4f} ({r['knn']['neighbors']}-NN, {r['knn']['folds']}-fold CV)"
               if r["knn_accuracy"] is not None else "not measurable (a class with one row)")
        lines += [f"adjusted Rand index (clusters vs labels): {ari}", f"k-NN accuracy: {knn}"]
    else:
        lines.append("no class labels: no ARI, no k-NN accuracy")
    maps = "t-SNE, PCA" + (", UMAP" if r["umap"] else " (UMAP: pip install umap-learn)")
    lines.append(f"maps: {maps}; wrote {r['out']} ({', '.join(r['files'])})")
    return "\n".join(lines)


def format_bowl(r: dict) -> str:
    """`nnrecipe bowl`: steps to tolerance per optimizer next to theory."""
    lines = [f"bowl: kappa {r['kappa']:g}, rotated {r['angle']:g} deg, steps to f/f0 < {r['tol']:g} "
             f"(at most {r['max_steps']})",
             f"{'optimizer':<10} {'lr':>9} {'momentum':>9} {'steps':>7} {'theory':>7}"]
    for name, o in r["optimizers"].items():
        steps = str(o["steps_to_tol"]) if o["steps_to_tol"] is not None else ("diverged" if o["diverged"] else "-")
        momentum = f"{o['momentum']:.4f}" if o["momentum"] is not None else "-"
        theory = str(o["theory_steps"]) if o["theory_steps"] is not None else "-"
        lines.append(f"{name:<10} {o['lr']:>9.4g} {momentum:>9} {steps:>7} {theory:>7}")
    d = r["divergence"]
    lines.append(f"sgd at lr {d['lr']:.4g} > 2/lambda_max = {d['threshold_lr']:g}: "
                 + (f"diverged after {d['steps_run']} steps" if d["diverged"] else "did not diverge"))
    return "\n".join(lines)
