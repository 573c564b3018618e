"""The `nnrecipe` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success; 2 bad input (one line ``error: <what> (<where>, <how to fix>)`` on stderr,
nothing written); 3 training diverged (NaN/Inf loss; the run is saved with the last good weights);
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys

from nnrecipe.errors import TrainingDiverged, UserError

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block
        sys.stderr.write(f"error: {message} (command line, see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="bundled name (digits [default], breast_cancer, wine, iris, diabetes), a .csv "
                        "file with a header row, a .npz file with arrays X and y, a folder of class "
                        "subfolders of images, or a generated sequence task seq:reverse|addition|memory|charlm")
    p.add_argument("--target", default=None, metavar="COL", help="label column of a CSV (default: the last column)")
    p.add_argument("--task", choices=["classification", "regression"], default=None,
                   help="override the inferred task (integer/string labels -> classification)")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="a YAML configuration (e.g. a run's config.yaml, which reproduces that run)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optimizer.lr=3e-4 --set model.hidden=[256,128]")
    p.add_argument("--seed", type=int, default=None, help="random seed for splits, init and batches (default 0)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="architecture: mlp [default], cnn, resnet, mobilenetv2, vit (these see digits as 1×8×8 "
                        "images); rnn, lstm, gru, seq2seq, transformer for token sequences")
    p.add_argument("--image-size", type=int, default=None, metavar="S",
                   help="image folders: resize every image to S×S (default: the first image's size)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="skip unreadable image files (their count is reported) instead of stopping")


def _flag_sets(args) -> list[str]:
    """Flags that are shortcuts for config keys, as ``key=value`` overrides (before --set, which wins)."""
    pairs = {"model.name": getattr(args, "model", None), "data.image_size": getattr(args, "image_size", None),
             "data.skip_bad_images": True if getattr(args, "skip_bad_images", False) else None,
             "transfer.init_from": getattr(args, "init_from", None), "transfer.freeze": getattr(args, "freeze", None),
             "transfer.unfreeze_at": getattr(args, "unfreeze", None),
             "transfer.gradual": True if getattr(args, "gradual_unfreeze", False) else None,
             "transfer.discriminative": getattr(args, "discriminative_lr", None)}
    return [f"{k}={v}" for k, v in pairs.items() if v is not None] + args.overrides


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnrecipe", description="Train, calibrate and evaluate neural networks the way "
                     "practitioners do, and keep the evidence in a run directory.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("fit", help="train a model and write a run directory",
                       description="Train an MLP (default on the bundled digits data), calibrate it with "
                       "temperature scaling, evaluate it on the test split and write runs/<time>-<data>-<model>/.")
    _data_options(p)
    p.add_argument("--test-data", default=None, metavar="FILE", help="a labelled test set instead of a test split")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (early stopping may stop sooner)")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<time>-<data>-<model>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; print only the run directory")
    p.add_argument("--ensemble", type=int, default=None, metavar="K",
                   help="train K members (seeds seed..seed+K-1, same split) and average their probabilities")
    p.add_argument("--scale-lr", action="store_true",
                   help="linear scaling rule: multiply the LR by batch_size / train.reference_batch_size (64)")
    g = p.add_argument_group("transfer learning")
    g.add_argument("--init-from", default=None, metavar="RUN_OR_FILE",
                   help="start from a run directory's (or a .safetensors/.pt state dict's) matching weights; "
                        "the head is new when the classes differ; LR x transfer.lr_factor (0.1)")
    g.add_argument("--freeze", default=None, metavar="SPEC",
                   help="'backbone' (train only the head) or up_to=<group> (e.g. up_to=stage1)")
    g.add_argument("--unfreeze", type=int, default=None, metavar="EPOCH",
                   help="unfreeze the frozen groups at this epoch (fine-tuning after feature extraction)")
    g.add_argument("--gradual-unfreeze", action="store_true",
                   help="from --unfreeze on, thaw one group per epoch, top first (ULMFiT)")
    g.add_argument("--discriminative-lr", type=float, default=None, metavar="F",
                   help="group k below the head trains at lr / F^k (e.g. 2.6)")

    p = sub.add_parser("predict", help="predict rows of a file with a trained run",
                       description="Writes a `prediction` column and, for classification, one calibrated "
                       "`prob_<class>` column per class, rows in input order.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="CSV/NPZ with the training feature columns, an image folder, or for sequence runs a CSV "
                        "with the text (or source) column or a .txt file with one input per line")
    p.add_argument("--out", default=None, metavar="FILE.csv", help="output CSV (default: standard output)")

    p = sub.add_parser("calibrate", help="refit the temperature T of a trained classifier",
                       description="Fits T (softmax(z/T) minimizing NLL) on labelled data, or on the run's own "
                       "validation split, prints NLL/ECE/MCE before and after, and updates the run in place "
                       "(model.json's T, metrics.json's calibration block, plots/reliability.png).")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="labelled data with the training columns (default: the run's validation split)")

    p = sub.add_parser("sample", help="continue a prompt with a trained language model",
                       description="Draws each next token from softmax(z/T) of a language-model run "
                       "(e.g. `nnrecipe fit --data seq:charlm`).")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--prompt", default="the ", help="text to continue (default 'the ')")
    p.add_argument("--length", type=int, default=200, help="tokens to sample (default 200)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="T > 0: below 1 sharper and more repetitive, above 1 more random (default 0.8)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate", help="metrics of a trained run on labelled data, or of COCO detections",
                       description="Prints the test-block metrics of RUN_DIR on new labelled data; with "
                       "--task detection, COCO mAP@[.5:.95], AP50, AP75, small/medium/large and per-class AP "
                       "of a COCO results file against COCO ground truth (no run needed).")
    p.add_argument("run", metavar="RUN_DIR", nargs="?", default=None)
    p.add_argument("--data", default=None, metavar="SOURCE", help="labelled CSV/NPZ or a bundled name")
    p.add_argument("--task", choices=["detection"], default=None, help="detection: evaluate --gt/--pred files")
    p.add_argument("--gt", default=None, metavar="GT.json", help="COCO ground truth (images, annotations, categories)")
    p.add_argument("--pred", default=None, metavar="PRED.json",
                   help="COCO results list of {image_id, category_id, bbox [x,y,w,h], score}")
    p.add_argument("--out", default=None, metavar="FILE.json", help="also write the metrics as JSON")
    p = sub.add_parser("doctor", help="run the tuning recipe: initial loss, activations, overfit a small "
                       "sample, LR range test, coarse search, curve diagnosis",
                       description="Runs the practitioner's recipe on the data/config `fit` would use and "
                       "writes doctor.json, best.yaml (train it with `nnrecipe fit --config best.yaml`), "
                       "study.db and plots/lr_finder.png to a run directory.")
    _data_options(p)
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<time>-<data>-doctor)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage for the search (default: SQLite study.db in the run directory); "
                        "several machines can share one study")
    p.add_argument("--search-epochs", type=int, default=3, metavar="N", help="epochs per search trial (1-5)")
    p.add_argument("--quiet", action="store_true", help="print only the run directory")

    p = sub.add_parser("schedule", help="preview an LR schedule before training",
                       description="Prints the LR at key steps of schedule NAME over N optimizer steps; "
                       "--csv writes step,lr for every step, --plot draws the curve. Names: constant, step, "
                       "multistep, exponential, cosine, cosine_restarts, linear, inverse_sqrt, one_cycle, "
                       "cyclic, plateau, deepseek.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--steps", type=int, required=True, metavar="N", help="total optimizer steps")
    p.add_argument("--lr", type=float, default=None, help="base LR (default: optimizer.lr or its default)")
    p.add_argument("--config", default=None, metavar="FILE.yaml", help="take schedule settings from a config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. --set schedule.warmup.steps=100 --set schedule.min_lr_factor=0.01")
    p.add_argument("--plot", default=None, metavar="OUT.png")
    p.add_argument("--csv", default=None, metavar="OUT.csv")

    p = sub.add_parser("summary", help="per-layer table of a model: output shapes, parameters, multiply-adds",
                       description="Builds the model `fit` would train (for the data's input shape) or the "
                       "model of a run directory, and prints each layer's output shape, parameter count and "
                       "multiply-adds, with totals at the bottom. No training.")
    p.add_argument("run", nargs="?", default=None, metavar="RUN_DIR", help="summarize a trained run instead")
    _data_options(p)
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="skip loading data: the input shape (e.g. 3,32,32 or 64) ...")
    p.add_argument("--classes", type=int, default=None, help="... and the number of outputs (default 10)")
    return parser


def _cmd_doctor(args) -> int:
    from nnrecipe.doctor import doctor

    if not 1 <= args.search_epochs <= 5:
        raise UserError(f"--search-epochs must be 1..5, got {args.search_epochs}", "--search-epochs",
                        "a coarse search trains each trial briefly")
    report = doctor(args.data, config=args.config, overrides=_flag_sets(args), target=args.target,
                    task=args.task, seed=args.seed, out=args.out, storage=args.storage, quiet=args.quiet)
    print(report["dir"] if args.quiet else f"run: {report['dir']}")
    return 0


def _cmd_schedule(args) -> int:
    from nnrecipe.training.preview import key_steps, preview_schedule, write_schedule_csv

    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}", "--steps", "pass the run's total optimizer steps")
    if args.lr is not None and args.lr <= 0:
        raise UserError(f"--lr must be > 0, got {args.lr}", "--lr", "pass a positive learning rate")
    lrs = preview_schedule(args.name, steps=args.steps, lr=args.lr, overrides=args.overrides, config=args.config)
    print(f"{'step':>10}  lr")
    for step in key_steps(lrs):
        print(f"{step:>10}  {lrs[step]:.6g}")
    if args.csv:
        write_schedule_csv(lrs, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        from nnrecipe.report.schedule_plot import plot_schedule

        plot_schedule(lrs, args.plot, title=f"{args.name} schedule, {args.steps} steps")
        print(f"wrote {args.plot}")
    return 0


def _print_sequence_metrics(m: dict) -> None:
    test = m["test"]
    if m["kind"] == "lm":
        print(f"test: perplexity {test['perplexity']:.3f}  token accuracy {test['token_accuracy']:.4f}")
        sample = m["sample"]
        print(f"sample (temperature {sample['temperature']}): {sample['text']!r}")
        return
    print(f"test: exact match {test['exact_match']:.4f}  token accuracy {test['token_accuracy']:.4f}  "
          f"BLEU {test['bleu']:.2f} ({test['bleu_tokens']}, {test['decoding']})")
    for ex in test["examples"][:3]:
        print(f"  {ex['source']!r} -> {ex['output']!r} (target {ex['target']!r})")


def _cmd_fit(args) -> int:
    from nnrecipe.pipeline import fit

    overrides = _flag_sets(args) + (["train.scale_lr=true"] if args.scale_lr else [])
    overrides += [f"train.ensemble={args.ensemble}"] if args.ensemble is not None else []
    try:
        run = fit(args.data, config=args.config, overrides=overrides, target=args.target,
                  task=args.task, test_data=args.test_data, epochs=args.epochs, seed=args.seed,
                  out=args.out, progress=not args.quiet)
    except TrainingDiverged as exc:
        sys.stderr.write(f"error: training diverged: {exc} (training, lower optimizer.lr or keep clipping on); "
                         f"last good weights saved in {getattr(exc, 'run_dir', '?')}\n")
        return EXIT_DIVERGED
    if args.quiet:
        print(run.dir)
        return 0
    test, m = run.metrics["test"], run.metrics
    print(f"run: {run.dir}")
    train = run.config["train"]
    if train["scale_lr"]:
        print(f"lr scaled by the linear rule: x {train['batch_size']}/{train['reference_batch_size']} "
              f"-> {m['lr']:.3g}")
    if m.get("skipped_steps"):
        print(f"skipped {m['skipped_steps']} non-finite steps (nan_policy=skip), halving the LR each time")
    if run.members:
        for member in m["members"]:
            key = "accuracy" if run.task == "classification" else "rmse"
            print(f"member seed {member['seed']}: test {key} {member['test'][key]:.4f}")
        print(f"ensemble of {len(run.members)}, {m['train_seconds']:.1f} s")
    else:
        print(f"epochs: {m['epochs_run']} (best {m['best_epoch']}), {m['train_seconds']:.1f} s")
    if m.get("skipped_images"):
        print(f"skipped {m['skipped_images']} unreadable images (--skip-bad-images)")
    t = m.get("transfer")
    if t:
        print(f"transfer from {t['source']}: {t['matched']} tensors matched, {len(t['new'])} new"
              + (f" ({', '.join(t['new'][:4])}{' ...' if len(t['new']) > 4 else ''})" if t["new"] else "")
              + (f"; frozen: {', '.join(t['frozen'])}" if t["frozen"] else ""))
        for event in t.get("events", []):
            print(f"  {event}")
    if m.get("kind") in ("seq2seq", "lm"):
        _print_sequence_metrics(m)
    elif run.task == "classification":
        print(f"test: accuracy {test['accuracy']:.4f}  f1_macro {test['f1_macro']:.4f}  "
              f"loss {test['loss']:.4f}  ece {test['ece']:.4f}")
    else:
        print(f"test: rmse {test['rmse']:.4f}  mae {test['mae']:.4f}  r2 {test['r2']:.4f}")
    grads = m.get("input_grad_norms")
    if grads:
        print("input-gradient norm |dL/dx_t| first/last step: "
              + ", ".join(f"{k} {v['first_step']:.2e}/{v['last_step']:.2e}" for k, v in grads.items()))
    cal = m.get("calibration")
    if cal:
        print(f"calibration: T = {cal['temperature']:.3f}, val NLL {cal['nll_before']:.4f} -> "
              f"{cal['nll_after']:.4f}, val ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}"
              + (f" ({cal['note']})" if cal.get("note") else ""))
    diag = m.get("diagnosis")
    if diag:
        print(f"curves: {diag['verdict']} ({'; '.join(diag['reasons'])}) -> {diag['advice']}")
    return 0


def _cmd_predict(args) -> int:
    from nnrecipe.inference import predict
    from nnrecipe.run import load

    text = predict(load(args.run), args.data, out=args.out)
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


def _cmd_sample(args) -> int:
    from nnrecipe.run import load
    from nnrecipe.seqinfer import sample

    print(sample(load(args.run), args.prompt, length=args.length, temperature=args.temperature, seed=args.seed))
    return 0


def _cmd_evaluate(args) -> int:
    from nnrecipe.evaluation import evaluate_detection
    from nnrecipe.inference import evaluate
    from nnrecipe.run import load

    if args.task == "detection":
        if not (args.gt and args.pred):
            raise UserError("detection evaluation needs both files", "--gt/--pred",
                            "pass --gt ground_truth.json --pred detections.json")
        result = evaluate_detection(args.gt, args.pred, out=args.out)
    elif args.run is None or args.data is None:
        raise UserError("evaluate needs a run and labelled data", "RUN_DIR/--data",
                        "pass `nnrecipe evaluate RUN_DIR --data SOURCE` (or --task detection --gt --pred)")
    else:
        result = evaluate(load(args.run), args.data, out=args.out)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_summary(args) -> int:
    from nnrecipe.describe import describe_model
    from nnrecipe.models.summary import format_summary

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) not in (1, 3) or min(shape) < 1:
            raise UserError(f"bad --input-shape '{args.input_shape}'", "--input-shape",
                            "write C,H,W for images (e.g. 3,32,32) or D for vectors (e.g. 64)")
    result = describe_model(args.data, run_dir=args.run, config=args.config, overrides=_flag_sets(args),
                            input_shape=shape, classes=args.classes)
    print(format_summary(result))
    return 0


COMMANDS = {"fit": _cmd_fit, "summary": _cmd_summary, "predict": _cmd_predict, "sample": _cmd_sample,
            "calibrate": _cmd_calibrate,
            "evaluate": _cmd_evaluate, "schedule": _cmd_schedule,
            "doctor": _cmd_doctor}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted (keyboard, nothing was written)\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
