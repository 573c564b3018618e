"""Handlers of the commands that use a trained run: predict, evaluate, calibrate, compress, export,
report, attack, sample, similar, analogy."""

from __future__ import annotations

import json
import sys

from nnrecipe.cli.summaries import format_analogy_accuracy, format_bowl, format_curvature, format_embedding
from nnrecipe.errors import UserError


def _cmd_predict(args) -> int:
    from nnrecipe.inference import predict
    from nnrecipe.tasks import open_run

    text = predict(open_run(args.run, "predict"), args.data, out=args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.out}")
    return 0


def _cmd_calibrate(args) -> int:
    from nnrecipe.calibrate import recalibrate

    r = recalibrate(args.run, args.data)
    print(f"calibration on {r['source']}: T = {r['temperature']:.4f}")
    for name in ("nll", "ece", "mce"):
        print(f"  {name.upper()} {r[name + '_before']:.4f} -> {r[name + '_after']:.4f}")
    if r.get("note"):
        print(f"  ({r['note']})")
    return 0


def _cmd_compress(args) -> int:
    from nnrecipe.compress import compress

    r = compress(args.run, max_drop=args.max_drop, metric=args.metric, methods=args.methods,
                 structured=args.structured, data=args.data, out=args.out)
    def fmt(v, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    header = ["variant", "sparsity", f"val {r['metric']}", "drop", f"test {r['metric']}", "test drop",
              "size KB", "ratio", "nonzero", "ms/batch", "ok"]
    rows = [[v["name"], fmt(v["sparsity"], ".3f"), fmt(v["val_metric"], ".4f"), fmt(v["drop"], "+.4f"),
             fmt(v["test_metric"], ".4f"), fmt(v["test_drop"], "+.4f"), fmt(v["size_bytes"] / 1024, ".1f"),
             fmt(v["compression_ratio"], ".2f"), str(v["nonzero_params"]), fmt(v["latency_ms"], ".2f"),
             "yes" if v["within_budget"] else "no"] for v in r["variants"]]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    for s in r["skipped"]:
        print(f"skipped {s['name']}: {s['reason']}")
    print(f"chosen: {r['chosen']} (budget {r['metric']} drop <= {r['max_drop']:g} on {r['validation']}) "
          f"-> {r['chosen_dir']}")
    if r["test_drop_exceeds_budget"]:
        chosen = next(v for v in r["variants"] if v["name"] == r["chosen"])
        sys.stderr.write(f"warning: the chosen variant's test drop {chosen['test_drop']:+.4f} exceeds the budget "
                         f"{r['max_drop']:g} that held on validation\n")
    return 0


def _cmd_sample(args) -> int:
    from nnrecipe.generative import sample_grid
    from nnrecipe.sequence_inference import sample
    from nnrecipe.tasks import open_run

    run = open_run(args.run, "sample")
    if run.task == "generative":  # images to a PNG; a language model's text to stdout
        out = args.out or "samples.png"
        print(f"wrote {sample_grid(args.run, out, count=args.count, seed=args.seed)}")
        return 0
    print(sample(run, args.prompt, length=args.length, temperature=args.temperature, seed=args.seed))
    return 0


def _analogy_accuracy(args) -> int:
    from pathlib import Path

    from nnrecipe.word_vectors import evaluate_analogies

    if args.run is None:
        raise UserError("--analogies needs a word2vec run", "RUN_DIR", "pass `nnrecipe evaluate RUN_DIR --analogies FILE`")
    result = evaluate_analogies(args.run, args.analogies)
    print(format_analogy_accuracy(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0


def _print_neighbours(pairs: list[tuple[str, float]]) -> None:
    for word, cosine in pairs:
        print(f"{word}\t{cosine:.4f}")


def _cmd_similar(args) -> int:
    from nnrecipe.word_vectors import similar

    _print_neighbours(similar(args.run, args.word, top=args.top))
    return 0


def _cmd_analogy(args) -> int:
    from nnrecipe.word_vectors import analogy

    _print_neighbours(analogy(args.run, args.a, args.b, args.c, top=args.top))
    return 0


def _cmd_evaluate(args) -> int:
    from nnrecipe.evaluation import evaluate_detection
    from nnrecipe.inference import evaluate
    from nnrecipe.tasks import open_run

    if args.analogies:
        return _analogy_accuracy(args)
    if args.task == "detection":
        if not (args.gt and args.pred):
            raise UserError("detection evaluation needs both files", "--gt/--pred",
                            "pass --gt ground_truth.json --pred detections.json")
        result = evaluate_detection(args.gt, args.pred, out=args.out)
    elif args.run is None or args.data is None:
        raise UserError("evaluate needs a run and labelled data", "RUN_DIR/--data",
                        "pass `nnrecipe evaluate RUN_DIR --data SOURCE` (or --task detection --gt --pred)")
    else:
        result = evaluate(open_run(args.run, "evaluate"), args.data, out=args.out)
    print(json.dumps(result, indent=2))
    return 0




def _floats(text: str, flag: str, example: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"bad {flag} '{text}'", flag, f"write numbers separated by commas, e.g. {example}") from None


def _cmd_attack(args) -> int:
    from nnrecipe.attack import attack

    raw_range = _floats(args.raw_range, "--range", "0,16") if args.raw_range else None
    if raw_range is not None and len(raw_range) != 2:
        raise UserError(f"--range needs two numbers, got '{args.raw_range}'", "--range", "write LO,HI, e.g. 0,16")
    r = attack(args.run, eps=_floats(args.eps, "--eps", "0.5,1,2"), method=args.method, steps=args.steps,
               step_size=args.step_size, data=args.data, raw_range=raw_range, seed=args.seed)
    steps = f", {r['steps']} steps" if r["method"] == "pgd" else ""
    span = f"range [{r['range'][0]:g}, {r['range'][1]:g}]" if r["range"] else "no range clamp"
    print(f"{r['method']}{steps} on {r['source']} ({r['rows']} rows), eps in raw input units, {span}")
    print(f"clean accuracy {r['clean_accuracy']:.4f}")
    for row in r["results"]:
        print(f"eps {row['eps']:g}: accuracy {row['accuracy']:.4f} (drop {row['drop']:.4f})")
    print(f"wrote {args.run.rstrip('/')}/attack.json")
    return 0


def _cmd_report(args) -> int:
    from nnrecipe.report.html import report

    print(f"wrote {report(args.runs, out=args.out)}")
    return 0


def _cmd_export(args) -> int:
    from nnrecipe.onnx_export import export_onnx

    r = export_onnx(args.run, out=args.out)
    print(f"wrote {r['path']} (opset {r['opset']}; input {r['inputs'][0]['name']} "
          f"{'×'.join(map(str, r['inputs'][0]['shape']))}; outputs {', '.join(o['name'] for o in r['outputs'])})")
    print(f"max abs difference of {r['outputs'][0]['name']} vs torch: {r['max_abs_diff']:.3g} "
          f"on {r['rows_checked']} rows ({r['check_data']}); tolerance {r['tolerance']:g}")
    return 0




def _cmd_curvature(args) -> int:
    from nnrecipe.curvature import curvature

    r = curvature(args.run, args.data, top_k=args.top_k, samples=args.samples, seed=args.seed, steps=args.steps,
                  trace_probes=args.probes, out=args.out)
    print(format_curvature(r))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _cmd_embed(args) -> int:
    from nnrecipe.embed import embed

    r = embed(args.run, args.data, layer=args.layer, out=args.out, seed=args.seed, samples=args.samples,
              neighbors=args.neighbors)
    print(format_embedding(r))
    return 0


def _lr_pairs(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    pairs = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            pairs[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"bad --lr '{part}'", "--lr", "write NAME=LR pairs, e.g. sgd=1.9,adam=0.1") from None
    return pairs


def _cmd_bowl(args) -> int:
    from nnrecipe.bowl import bowl

    r = bowl(kappa=args.kappa, angle=args.angle, tol=args.tol, optimizers=args.optimizers,
             lrs=_lr_pairs(args.lr), max_steps=args.max_steps, out=args.out)
    print(format_bowl(r))
    print(f"wrote {r['png']} and {r['json']}")
    return 0
