"""The `nnrecipe` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success; 2 bad input (one line ``error: <what> (<where>, <how to fix>)`` on stderr,
nothing written); 3 training diverged (NaN/Inf loss; the run is saved with the last good weights);
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
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
                        "images); rnn, lstm, gru, seq2seq, transformer for token sequences; word2vec for text "
                        "corpora; autoencoder, vae, gan for images")
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
             "transfer.discriminative": getattr(args, "discriminative_lr", None),
             "peft.method": getattr(args, "peft", None), "peft.rank": getattr(args, "peft_rank", None),
             "peft.alpha": getattr(args, "peft_alpha", None),
             "peft.targets": (json.dumps(args.peft_targets.split(","))  # JSON: globs like *attn* stay strings
                              if getattr(args, "peft_targets", None) else None),
             "adversarial.method": getattr(args, "adversarial", None),
             "adversarial.eps": getattr(args, "adv_eps", None), "adversarial.steps": getattr(args, "adv_steps", None)}
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
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted fit from its last checkpoint (its config.yaml is used; "
                        "only --quiet may be given with it)")
    p.add_argument("--checkpoint-every-steps", type=int, default=None, metavar="N",
                   help="also checkpoint every N optimizer steps (a checkpoint is written every epoch anyway)")
    g = p.add_argument_group("speed")
    g.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None,
                   help="where to train (default auto: cuda, then mps, then cpu)")
    g.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None,
                   help="mixed precision autocast (fp16: CUDA only, with loss scaling)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (eager fallback if unsupported)")
    g.add_argument("--accumulate", type=int, default=None, metavar="N",
                   help="gradient accumulation: N micro-batches of batch_size per optimizer step")
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
    g = p.add_argument_group("parameter-efficient fine-tuning (with --init-from)")
    g.add_argument("--peft", choices=["lora", "adapter", "prompt"], default=None,
                   help="freeze the base and train LoRA updates, bottleneck adapters or prompt tokens "
                        "(prompt: vit); saves only adapter.safetensors plus the base's path and SHA-256")
    g.add_argument("--peft-rank", type=int, default=None, metavar="R", help="LoRA rank r (default 8)")
    g.add_argument("--peft-alpha", type=float, default=None, metavar="A", help="LoRA scale: update x A/r (default 16)")
    g.add_argument("--peft-targets", default=None, metavar="PATTERN[,PATTERN]",
                   help="layer names (substrings) or globs to wrap (default: every Linear, and Conv2d for lora, "
                        "but the head)")
    g = p.add_argument_group("adversarial training")
    g.add_argument("--adversarial", choices=["fgsm", "pgd"], default=None,
                   help="train on attacked batches (Madry et al.); metrics.json reports clean and PGD accuracy")
    g.add_argument("--eps", dest="adv_eps", type=float, default=None, metavar="E",
                   help="L-inf radius in raw input units (digits: pixel values 0-16; default 1)")
    g.add_argument("--adv-steps", type=int, default=None, metavar="K", help="PGD steps per batch (default 7)")

    p = sub.add_parser("attack", help="accuracy of a trained classifier under FGSM/PGD attacks",
                       description="Attacks the run's test split (or labelled --data) in an L-inf ball of radius "
                       "eps, in raw input units (converted by the run's per-feature/per-channel std; inputs stay "
                       "in the valid range, [0, 16] for digits), prints clean and attacked accuracy and writes "
                       "RUN_DIR/attack.json.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--eps", required=True, metavar="E[,E...]", help="radii in raw input units, e.g. 0.5,1,2")
    p.add_argument("--method", choices=["fgsm", "pgd"], default="pgd", help="attack (default pgd)")
    p.add_argument("--steps", type=int, default=10, help="PGD steps (default 10)")
    p.add_argument("--step-size", type=float, default=None, metavar="A",
                   help="PGD step in raw units (default 2.5*eps/steps)")
    p.add_argument("--data", default=None, metavar="SOURCE", help="labelled data (default: the run's test split)")
    p.add_argument("--range", dest="raw_range", default=None, metavar="LO,HI",
                   help="valid raw input range (default: the run's adversarial.raw_range, else [0,16] for "
                        "digits, else no clamp)")
    p.add_argument("--seed", type=int, default=0, help="PGD random start seed")

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

    p = sub.add_parser("compress", help="int8 quantization and magnitude pruning within a metric budget",
                       description="Measures quantized, pruned (sparsity found by bisection) and pruned+quantized "
                       "variants of a run on its own validation/test splits, writes the smallest one whose "
                       "validation metric drops by at most --max-drop as a run directory (RUN_DIR/compressed) "
                       "and the table to RUN_DIR/compression.json.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--max-drop", type=float, default=0.005, metavar="D",
                   help="largest acceptable validation metric drop (default 0.005)")
    p.add_argument("--metric", choices=["accuracy", "f1_macro", "rmse", "r2"], default=None,
                   help="budget metric (default: accuracy for classification, rmse for regression)")
    p.add_argument("--methods", default="quantize,prune", metavar="LIST",
                   help="comma-separated subset of quantize,prune (default both, and their combination)")
    p.add_argument("--structured", action="store_true", help="also try channel (L2 structured) pruning")
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="labelled data to measure the drop on instead of the run's validation split")
    p.add_argument("--out", default=None, metavar="DIR", help="compressed run directory (default RUN_DIR/compressed)")

    p = sub.add_parser("sample", help="continue a prompt with a trained language model",
                       description="Draws each next token from softmax(z/T) of a language-model run "
                       "(e.g. `nnrecipe fit --data seq:charlm`).")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--prompt", default="the ", help="text to continue (default 'the ')")
    p.add_argument("--length", type=int, default=200, help="tokens to sample (default 200)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="T > 0: below 1 sharper and more repetitive, above 1 more random (default 0.8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, metavar="FILE.png",
                   help="vae/gan runs: write a grid of generated images here (default samples.png)")
    p.add_argument("--count", type=int, default=64, metavar="N", help="vae/gan runs: images in the grid (default 64)")

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
    p.add_argument("--analogies", default=None, metavar="FILE",
                   help="word2vec runs: accuracy on a questions-words file (': section', then 'a b c d' lines), "
                        "or w2v:synthetic")
    p = sub.add_parser("doctor", help="run the tuning recipe: initial loss, activations, overfit a small "
                       "sample, LR range test, coarse search, curve diagnosis",
                       description="Runs the practitioner's recipe on the data/config `fit` would use and "
                       "writes doctor.json, best.yaml (train it with `nnrecipe fit --config best.yaml`), "
                       "study.db and plots/lr_finder.png to a run directory.")
    _data_options(p)
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<time>-<data>-doctor)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage for the search (default: SQLite study.db in the run directory); "
                        "sqlite:///FILE, journal:FILE (several processes), postgresql://… (several machines; "
                        "give every worker the same --seed)")
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

    p = sub.add_parser("similar", help="nearest words of a word2vec run by cosine similarity",
                       description="Prints `word<TAB>cosine` for the TOP words whose vectors have the largest "
                       "cosine with WORD's (WORD itself excluded).")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("word", metavar="WORD")
    p.add_argument("--top", type=int, default=10, metavar="K", help="how many words (default 10)")

    p = sub.add_parser("analogy", help="A - B + C with a word2vec run (king man woman -> queen)",
                       description="Prints `word<TAB>cosine` for the TOP words nearest to A - B + C on unit "
                       "vectors (3CosAdd), A, B and C excluded.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("c", metavar="C")
    p.add_argument("--top", type=int, default=10, metavar="K", help="how many words (default 10)")

    p = sub.add_parser("report", help="one self-contained HTML report of a run, or a comparison of runs",
                       description="One run: config, data, model, learning curves, health, test metrics, "
                       "confusion matrix, ROC/PR, calibration, per-class table (default RUN/report.html). "
                       "Several runs: config differences, overlaid curves, metrics side by side "
                       "(default ./report-compare.html). Opens offline: figures are embedded.")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", default=None, metavar="FILE.html", help="where to write the report")

    p = sub.add_parser("export", help="export a trained run to ONNX, checked against torch with onnxruntime",
                       description="Writes one ONNX graph that takes raw features/images (the run's input "
                       "transform is inside) or token ids and returns logits and calibrated probabilities "
                       "(regression: output and prediction), batch axis dynamic; runs it with onnxruntime "
                       "on the run's test split, prints the max abs difference of the logits from torch "
                       "(must be <= 1e-4) and writes export.json beside the model. Needs "
                       "`pip install \"nnrecipe[export]\"`.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="model format (onnx)")
    p.add_argument("--out", default=None, metavar="FILE.onnx", help="where to write it (default RUN_DIR/model.onnx)")
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
    if args.checkpoint_every_steps is not None:
        overrides.append(f"train.checkpoint_every_steps={args.checkpoint_every_steps}")
    speed = {"device": args.device, "precision": args.precision, "accumulate": args.accumulate,
             "compile": "true" if args.compile else None}
    overrides = [f"train.{k}={v}" for k, v in speed.items() if v is not None] + overrides  # --set wins
    if args.resume:  # every other flag would change the run: refuse them rather than ignore them
        defaults = vars(build_parser().parse_args(["fit"]))
        given = ["--set" if k == "overrides" else f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                 if k not in ("resume", "quiet") and v != defaults.get(k)]
        if given:
            raise UserError(f"--resume continues a run with its own config.yaml, got {' '.join(given)}", "--resume",
                            "drop those flags, or start a new run with --config RUN_DIR/config.yaml")
    try:
        run = (fit(resume=args.resume, progress=not args.quiet) if args.resume else
               fit(args.data, config=args.config, overrides=overrides, target=args.target,
                   task=args.task, test_data=args.test_data, epochs=args.epochs, seed=args.seed,
                   out=args.out, progress=not args.quiet))
    except KeyboardInterrupt as exc:
        if getattr(exc, "run_dir", None) is None:
            raise
        sys.stderr.write(f"error: interrupted (keyboard, the run so far is in {exc.run_dir}; "
                         f"continue it with `nnrecipe fit --resume {exc.run_dir}`)\n")
        return EXIT_INTERRUPTED
    except TrainingDiverged as exc:
        sys.stderr.write(f"error: training diverged: {exc} (training, lower optimizer.lr or keep clipping on); "
                         f"last good weights saved in {getattr(exc, 'run_dir', '?')}\n")
        return EXIT_DIVERGED
    if run.dir is not None and os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 alone reports the run
        return 0
    if args.quiet:
        print(run.dir)
        return 0
    if run.task == "embedding":
        from nnrecipe.w2vfit import format_fit_summary

        print(f"run: {run.dir}\n{format_fit_summary(run.metrics)}")
        return 0
    if run.task == "generative":
        from nnrecipe.genfit import summary_lines

        print("\n".join([f"run: {run.dir}", *summary_lines(run.metrics)]))
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
    pf = m.get("peft")
    if pf:
        print(f"peft {pf['method']}: trainable {pf['trainable']:,} of {pf['total']:,} parameters "
              f"({pf['trainable_percent']:.2f}%), {len(pf['modules'])} layers wrapped")
    adv = m.get("adversarial")
    if adv:
        print(f"adversarial ({adv['method']}, eps {adv['eps']} raw units): clean accuracy "
              f"{adv['clean_accuracy']:.4f}, PGD accuracy {adv['robust_accuracy']:.4f}")
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
    from nnrecipe.genfit import refuse_generative
    from nnrecipe.inference import predict
    from nnrecipe.run import load

    refuse_generative(args.run, "predict")
    text = predict(load(args.run), args.data, out=args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.out}")
    return 0


def _cmd_calibrate(args) -> int:
    from nnrecipe.calibrate import recalibrate
    from nnrecipe.genfit import refuse_generative

    refuse_generative(args.run, "calibrate")
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
    from nnrecipe.genfit import is_generative_run, sample_grid
    from nnrecipe.run import load
    from nnrecipe.seqinfer import sample

    if is_generative_run(args.run):
        out = args.out or "samples.png"
        print(f"wrote {sample_grid(args.run, out, count=args.count, seed=args.seed)}")
        return 0
    print(sample(load(args.run), args.prompt, length=args.length, temperature=args.temperature, seed=args.seed))
    return 0


def _analogy_accuracy(args) -> int:
    from pathlib import Path

    from nnrecipe.w2vfit import evaluate_analogies, format_analogy_accuracy

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
    from nnrecipe.w2vfit import similar

    _print_neighbours(similar(args.run, args.word, top=args.top))
    return 0


def _cmd_analogy(args) -> int:
    from nnrecipe.w2vfit import analogy

    _print_neighbours(analogy(args.run, args.a, args.b, args.c, top=args.top))
    return 0


def _cmd_evaluate(args) -> int:
    from nnrecipe.evaluation import evaluate_detection
    from nnrecipe.inference import evaluate
    from nnrecipe.run import load

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
        from nnrecipe.genfit import refuse_generative

        refuse_generative(args.run, "evaluate")
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
    from nnrecipe.post.export import export_onnx

    r = export_onnx(args.run, out=args.out)
    print(f"wrote {r['path']} (opset {r['opset']}; input {r['inputs'][0]['name']} "
          f"{'×'.join(map(str, r['inputs'][0]['shape']))}; outputs {', '.join(o['name'] for o in r['outputs'])})")
    print(f"max abs difference of {r['outputs'][0]['name']} vs torch: {r['max_abs_diff']:.3g} "
          f"on {r['rows_checked']} rows ({r['check_data']}); tolerance {r['tolerance']:g}")
    return 0


COMMANDS = {"fit": _cmd_fit, "summary": _cmd_summary, "predict": _cmd_predict, "sample": _cmd_sample,
            "calibrate": _cmd_calibrate, "attack": _cmd_attack, "compress": _cmd_compress,
            "evaluate": _cmd_evaluate, "schedule": _cmd_schedule, "report": _cmd_report,
            "doctor": _cmd_doctor, "similar": _cmd_similar, "analogy": _cmd_analogy,
            "export": _cmd_export}


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
