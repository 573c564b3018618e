"""The `nnrecipe` argument parser: every subcommand, its flags and their help."""

from __future__ import annotations

import argparse
import json
import sys

from nnrecipe.errors import UserError

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block
        sys.stderr.write(f"error: {message} (command line, see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_BAD_INPUT)


RUNS_ACTIONS = ("list", "compare", "export")


class _TopParser(_Parser):
    """`nnrecipe runs [DIR]` lists; `nnrecipe runs compare|export …` are actions: anything else
    after `runs` (a DIR, a flag, nothing) is the list action's, so ``list`` goes in front of it."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if args[:1] == ["runs"] and (len(args) == 1 or args[1] not in (*RUNS_ACTIONS, "-h", "--help")):
            args = ["runs", "list", *args[1:]]
        return super().parse_known_args(args, namespace)


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="bundled name (digits [default], breast_cancer, wine, iris, diabetes), a .csv "
                        "file with a header row, a .npz file with arrays X and y, a folder of class "
                        "subfolders of images, a .txt file or folder of them (a language model), a generated "
                        "sequence task seq:reverse|addition|memory|charlm|tagging, tagged sentences (a CSV "
                        "with tokens,tags columns or a .conll file), or captioned images (a folder with "
                        "captions.csv, a COCO captions .json with the images beside it, or cap:digits)")
    p.add_argument("--target", default=None, metavar="COL", help="label column of a CSV (default: the last column)")
    p.add_argument("--text-column", default=None, metavar="COL",
                   help="text CSVs: the column holding the text (default: the one free-text column, or 'text')")
    p.add_argument("--task", choices=["classification", "regression", "tagging"], default=None,
                   help="override the inferred task (integer/string labels -> classification; tagging: one tag "
                        "per token, read from a tokens,tags CSV or a CoNLL file of any name)")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="a YAML configuration (e.g. a run's config.yaml, which reproduces that run)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optimizer.lr=3e-4 --set model.hidden=[256,128]")
    p.add_argument("--seed", type=int, default=None, help="random seed for splits, init and batches (default 0)")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="architecture: mlp [default], cnn, resnet, mobilenetv2, vit (these see digits as 1×8×8 "
                        "images); rnn, lstm, gru, seq2seq, transformer for token sequences; word2vec for text "
                        "corpora; autoencoder, vae, gan for images; captioner for captioned images")
    p.add_argument("--model-class", default=None, metavar="PACKAGE.MODULE:CLASS",
                   help="train your own torch.nn.Module class instead of a built-in model (importable, or a "
                        "module in the current folder); it must map the data's inputs [N, ...] to [N, classes] "
                        "logits (or [N, 1] for regression); its own init is kept unless --set init.name=...")
    p.add_argument("--model-kwargs", default=None, metavar="JSON",
                   help="constructor keyword arguments for --model-class, e.g. '{\"width\": 64}'")
    p.add_argument("--image-size", type=int, default=None, metavar="S",
                   help="image folders: resize every image to S×S (default: the first image's size)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="skip unreadable image files (their count is reported) instead of stopping")


def model_kwargs(text: str) -> dict:
    """--model-kwargs: a JSON object of constructor keyword arguments."""
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--model-kwargs is not JSON ({exc.msg} at character {exc.pos})", "--model-kwargs",
                        """write an object, e.g. --model-kwargs '{"width": 64}'""") from None
    if not isinstance(kwargs, dict):
        raise UserError("--model-kwargs must be a JSON object", "--model-kwargs", """e.g. '{"width": 64}'""")
    return kwargs


def _flag_sets(args) -> list[str]:
    """Flags that are shortcuts for config keys, as ``key=value`` overrides (before --set, which wins)."""
    model_class = getattr(args, "model_class", None)
    pairs = {"model.name": "custom" if model_class else getattr(args, "model", None),
             "model.class_path": model_class,
             "model.kwargs": json.dumps(model_kwargs(args.model_kwargs)) if getattr(args, "model_kwargs", None) else None,
             "data.image_size": getattr(args, "image_size", None),
             "text.text_column": getattr(args, "text_column", None),
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
    parser = _TopParser(prog="nnrecipe", description="Train, calibrate and evaluate neural networks the way "
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
    p.add_argument("--profile", nargs="?", const="on", choices=["on", "trace"], default=None,
                   help="time each epoch's data loading, forward, backward, optimizer step and callbacks, "
                        "samples/s and peak memory (metrics.json `profile`, the report); `--profile trace` "
                        "also writes a torch.profiler Chrome trace of a few steps to RUN/profile/")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard event files to RUN/tensorboard/ (losses, accuracy, LR, gradient norm, "
                        "health statistics, the config); view with `tensorboard --logdir runs`")
    p.add_argument("--scale-lr", action="store_true",
                   help="linear scaling rule: multiply the LR by batch_size / train.reference_batch_size (64)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted fit from its last checkpoint (its config.yaml is used; "
                        "only --quiet may be given with it)")
    p.add_argument("--checkpoint-every-steps", type=int, default=None, metavar="N",
                   help="also checkpoint every N optimizer steps (a checkpoint is written every epoch anyway; "
                        "GAN and word2vec fits checkpoint per epoch only)")
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
                        "with the text (or source) column or a .txt file with one input per line; for captioning "
                        "runs a folder of images, a captions folder or COCO .json, one image, or cap:digits "
                        "(the run's test canvases): one `file,caption` row per image")
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

    p = sub.add_parser("curvature", help="Hessian spectrum of a run's training loss: top-k eigenvalues, "
                       "lambda_min, trace, condition number",
                       description="Hessian-vector products (double backward) of the run's own loss, averaged "
                       "over a sample of its training split (or labelled --data): top-k eigenvalues and the "
                       "smallest by Lanczos, the trace by Hutchinson's estimator with its standard error, the "
                       "eigenvalue density by stochastic Lanczos quadrature, and the HVPs and seconds it took.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="labelled data with the training columns (default: the run's training split)")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="rows the loss is averaged over, drawn with --seed (default: all, up to 1024)")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="largest eigenvalues to report (default 3)")
    p.add_argument("--steps", type=int, default=None, metavar="M",
                   help="Lanczos steps (default max(40, 3K), at most the parameter count)")
    p.add_argument("--probes", type=int, default=100, metavar="P", help="Hutchinson probes for the trace (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and the random probes")
    p.add_argument("--out", default=None, metavar="FILE.json", help="also write the result as JSON")

    p = sub.add_parser("embed", help="maps of a run's learned features: PCA, t-SNE (UMAP), k-means, k-NN accuracy",
                       description="Features of the run's test split (or --data): the input of the last Linear "
                       "layer by default (the penultimate activations), any module with --layer, an autoencoder's "
                       "code (a VAE's mean), word2vec's vectors. Reports PCA explained variance, k-means with k "
                       "chosen by silhouette, the adjusted Rand index against the labels and the cross-validated "
                       "k-NN accuracy; writes scatter plots, embedding.csv and TensorBoard projector files.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="rows with the training columns, images or text (default: the run's test split)")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="a module name from model.named_modules() whose output is the feature "
                   "(default: the input of the last Linear layer)")
    p.add_argument("--samples", type=int, default=2000, metavar="N",
                   help="rows embedded at most, a seeded sample beyond (default 2000; t-SNE costs N^2)")
    p.add_argument("--neighbors", type=int, default=5, metavar="K", help="k of the k-NN accuracy (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, k-means, t-SNE and the CV folds")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write (default RUN_DIR/embedding/)")

    p = sub.add_parser("bowl", help="optimizers on a 2-D quadratic bowl: trajectories, loss, steps vs theory",
                       description="f(θ) = ½θᵀHθ with H = U·diag(λ₁, λ₂)·Uᵀ, λ₁ = 1, κ = λ₁/λ₂, U a rotation "
                       "by --angle. Runs each optimizer (torch's) from the same start with its best LR from a "
                       "small grid (or --lr), counts the steps to f/f(θ₀) < --tol next to theory (gradient "
                       "descent and heavy ball), shows a run just past the divergence threshold 2/λmax, and "
                       "writes DIR/bowl.png and DIR/bowl.json.")
    p.add_argument("--kappa", type=float, default=50.0, metavar="K", help="condition number λ₁/λ₂ (default 50)")
    p.add_argument("--angle", type=float, default=30.0, metavar="DEG",
                   help="rotation of the eigenvectors from the axes, degrees (default 30)")
    p.add_argument("--tol", type=float, default=1e-6, metavar="EPS",
                   help="stop when f(θ)/f(θ₀) < EPS (default 1e-6)")
    p.add_argument("--optimizers", default="sgd,momentum,nesterov,rmsprop,adam", metavar="LIST",
                   help="comma-separated: sgd, momentum, nesterov, or any optimizer.name (rmsprop, adam, adamw, "
                        "adagrad, ...); default sgd,momentum,nesterov,rmsprop,adam")
    p.add_argument("--lr", default=None, metavar="NAME=LR[,NAME=LR]",
                   help="fixed LRs instead of the grid search, e.g. sgd=1.9,adam=0.1")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="steps before giving up (default 20 × gradient descent's theory)")
    p.add_argument("--out", default="bowl", metavar="DIR", help="output folder (default ./bowl)")

    _runs_parser(sub)
    p = sub.add_parser("config", help="the resolved configuration as YAML, or the reference of every key",
                       description="Prints the configuration `fit` would record in config.yaml for --config and "
                       "--set (defaults that depend on the model or data included). --reference prints the "
                       "markdown table of every key (default, values, meaning) generated from the config "
                       "models; --reference README.md rewrites the table between the file's "
                       "<!-- config-reference:start --> and <!-- config-reference:end --> lines instead.")
    p.add_argument("--config", default=None, metavar="FILE.yaml", help="a YAML configuration to resolve")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set model.name=vit")
    p.add_argument("--reference", nargs="?", const="-", default=None, metavar="FILE",
                   help="print the configuration reference table; with FILE, rewrite the block in FILE")
    return parser


def _runs_parser(sub) -> None:
    runs = sub.add_parser("runs", help="the runs registry: a table of every run under runs/, compare runs, "
                          "export them to MLflow",
                          description="`nnrecipe runs [DIR]` lists every run directory under DIR (default "
                          "./runs): data, model, task, status (complete, INCOMPLETE, diverged), best epoch, "
                          "headline test metric, test ECE, wall time, date, read from the run directories "
                          "themselves (DIR/.nnrecipe-index.json is only a cache). `runs compare A B …` and "
                          "`runs export --mlflow` are the other actions.")
    actions = runs.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = actions.add_parser("list", help="the table of runs (the default action)")
    p.add_argument("dir", nargs="?", default=None, metavar="DIR", help="folder of run directories (default ./runs)")
    p.add_argument("--sort", default=None, metavar="KEY",
                   help="best first by a metrics.json key (test.accuracy: higher first; test.rmse, ece, "
                        "wall_seconds: lower first), date (newest first), or a field / config key (ascending)")
    p.add_argument("--reverse", action="store_true", help="reverse the order")
    p.add_argument("--filter", dest="filters", action="append", default=[], metavar="KEY=VALUE",
                   help="keep the runs whose config key (model.name=lstm, optimizer.lr=0.001) or field "
                        "(task=tabular, status=diverged, model=lstm: the model built) equals VALUE; repeatable")
    p.add_argument("--json", action="store_true", help="print the records as JSON (with config and metrics)")
    p.add_argument("--no-index", action="store_true", help="read every run, neither using nor writing the index cache")

    p = actions.add_parser("compare", help="config differences and metrics of two or more runs side by side",
                           description="The config keys whose values differ (only those), the test metrics "
                           "side by side with the best marked, and with --out the HTML comparison of "
                           "`nnrecipe report` (learning curves overlaid).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or names under --dir")
    p.add_argument("--dir", default=None, metavar="DIR", help="where names are looked up (default ./runs)")
    p.add_argument("--out", default=None, metavar="FILE.html", help="also write the HTML comparison there")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")

    p = actions.add_parser("export", help="log every finished run to MLflow (params, per-epoch metrics, artifacts)",
                           description="Logs each finished run under DIR to an MLflow tracking server: the "
                           "config as params, history.csv per epoch and metrics.json as metrics, the run's files "
                           "as artifacts (not checkpoints/). Runs already exported unchanged are skipped. Needs "
                           "`pip install \"nnrecipe[mlflow]\"`.")
    p.add_argument("dir", nargs="?", default=None, metavar="DIR", help="folder of run directories (default ./runs)")
    p.add_argument("--mlflow", action="store_true", required=True, help="export to MLflow (the one target)")
    p.add_argument("--tracking-uri", default=None, metavar="URI",
                   help="MLflow tracking URI, e.g. http://mlflow:5000 or sqlite:///mlflow.db "
                        "(default: MLflow's, $MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", default="nnrecipe", metavar="NAME", help="MLflow experiment (default nnrecipe)")
    p.add_argument("--filter", dest="filters", action="append", default=[], metavar="KEY=VALUE",
                   help="export only the matching runs (as for the list)")


