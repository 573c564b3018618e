"""Test accuracy with and without EDA (`augment.text`) on the task of benchmarks/eda_data.py, per seed
(the seed drives the split, the initialization, the batch order and the augmentations).

Variants, all an LSTM with the same settings: no augmentation; EDA (α = 0.1 for the four
operations, prob 0.9) with the synonyms file; EDA with the synonyms taken from a word2vec run
trained on the task's unlabelled corpus (its 5 nearest neighbours, cos ≥ 0.5); EDA with the
two operations that need no synonyms (random swap and deletion, α = 0.1). Prints a Markdown table
(mean ± sample standard deviation, then each seed) and writes the runs under OUT.

    python benchmarks/eda_data.py /tmp/eda
    python benchmarks/eda_effect.py /tmp/eda --out /tmp/eda-runs [--seeds 0 1 2] [--epochs 60]

Each fit is the CLI's
    nnrecipe fit --data /tmp/eda/topics.csv --target label --model lstm --epochs 60 --seed S \\
      --set text.level=word --set data.val_fraction=0.1 --set data.test_fraction=0.6 [EDA --set ...]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import nnrecipe

COMMON = ["text.level=word", "data.val_fraction=0.1", "data.test_fraction=0.6"]


def variants(data: Path, w2v: Path) -> dict[str, list[str]]:
    return {
        "none": [],
        "EDA, synonyms file": ["augment.text.alpha=0.1", f"augment.text.synonyms={data / 'synonyms.txt'}"],
        "EDA, word2vec neighbours": ["augment.text.alpha=0.1", f"augment.text.synonyms_from={w2v}"],
        "EDA, swap + deletion only": ["augment.text.alpha_rs=0.1", "augment.text.p_rd=0.1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the folder benchmarks/eda_data.py wrote")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--model", default="lstm")
    args = parser.parse_args()
    w2v = args.out / "word2vec"
    if not (w2v / "model.json").exists():
        nnrecipe.fit(str(args.data / "unlabelled.txt"), model="word2vec", overrides=["word2vec.dim=32"], out=w2v)
    rows = []
    for name, sets in variants(args.data, w2v).items():
        accs = []
        for seed in args.seeds:
            out = args.out / f"{name.split(',')[0].lower()}-{len(rows)}-seed{seed}"
            run = nnrecipe.load(out) if (out / "metrics.json").exists() else nnrecipe.fit(
                str(args.data / "topics.csv"), target="label", model=args.model, epochs=args.epochs, seed=seed,
                overrides=[*COMMON, *sets], out=out)
            accs.append(run.metrics["test"]["accuracy"])
        rows.append((name, accs))
    print(f"| {args.model}, {args.epochs} epochs | test accuracy, mean ± sd | seeds {', '.join(map(str, args.seeds))} |")
    print("|---|---|---|")
    for name, accs in rows:
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {name} | {statistics.mean(accs):.3f} ± {sd:.3f} | {' / '.join(f'{a:.3f}' for a in accs)} |")


if __name__ == "__main__":
    main()
