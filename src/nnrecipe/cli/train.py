"""Handlers of the commands that train or inspect models: fit, doctor, schedule, summary, config."""

from __future__ import annotations

import os
import sys

from nnrecipe.cli.parser import EXIT_DIVERGED, EXIT_INTERRUPTED, _flag_sets, build_parser
from nnrecipe.cli.summaries import (format_captioning_fit, format_doctor_report, format_generative_fit,
                                   format_model_summary, format_profile, format_tagging_fit, format_word2vec_fit)
from nnrecipe.errors import TrainingDiverged, UserError


def _cmd_doctor(args) -> int:
    from nnrecipe.doctor import doctor

    report = doctor(args.data, config=args.config, overrides=_flag_sets(args), target=args.target,
                    task=args.task, seed=args.seed, out=args.out, storage=args.storage,
                    search_epochs=args.search_epochs)
    print(report["dir"] if args.quiet else f"{format_doctor_report(report)}\nrun: {report['dir']}")
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


def _cmd_config(args) -> int:
    from pathlib import Path

    import yaml

    from nnrecipe.config import config_to_dict, resolve_config
    from nnrecipe.config.reference import reference_table, replace_reference

    if args.reference is None:
        cfg = resolve_config(file=args.config, overrides=args.overrides)
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")  # as config.yaml
        return 0
    if args.config or args.overrides:
        raise UserError("--reference documents every key; --config/--set do not apply to it", "config --reference",
                        "drop --config/--set, or drop --reference to see a resolved configuration")
    if args.reference == "-":
        print(reference_table(), end="")
        return 0
    path = Path(args.reference)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {type(exc).__name__}", "config --reference", "pass the README") from None
    updated = replace_reference(text, where=str(path))
    if updated != text:
        path.write_text(updated)
    print(f"{'wrote' if updated != text else 'up to date:'} {path}")
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
    from nnrecipe.driver import fit

    overrides = _flag_sets(args) + (["train.scale_lr=true"] if args.scale_lr else [])
    overrides += ["train.tensorboard=true"] if args.tensorboard else []
    overrides += [f"train.profile={args.profile}"] if getattr(args, "profile", None) else []
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
    _print_fit(run)
    if run.metrics.get("profile"):
        print(format_profile(run.metrics["profile"]))
    return 0


def _print_fit(run) -> None:
    """The fit's summary lines, by task."""
    if run.task == "embedding":
        print(f"run: {run.dir}\n{format_word2vec_fit(run.metrics)}")
        return
    if run.task == "generative":
        print(f"run: {run.dir}\n{format_generative_fit(run.metrics)}")
        return
    if run.task == "tagging":
        print(f"run: {run.dir}\n{format_tagging_fit(run.metrics)}")
        return
    if run.task == "captioning":
        print(f"run: {run.dir}\nreport: {run.dir / 'report.html'}\n{format_captioning_fit(run.metrics)}")
        return
    test, m = run.metrics["test"], run.metrics
    print(f"run: {run.dir}")
    if (run.dir / "report.html").exists():
        print(f"report: {run.dir / 'report.html'}")
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




def _cmd_summary(args) -> int:
    from nnrecipe.describe import describe_model

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
    print(format_model_summary(result))
    return 0


