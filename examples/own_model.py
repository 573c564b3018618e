"""Train your own nn.Module with the whole nnrecipe recipe, from NumPy arrays in memory.

    cd examples && python own_model.py [--seed N] [--out DIR]
    nnrecipe predict runs/own-cnn --data digits_sample.npz     # from this folder: mynets imports

The run directory gets what a built-in model's does: config.yaml, model.json (the class as
"mynets:DigitsCNN" plus its kwargs, no pickle), model.safetensors, metrics.json with temperature
scaling, history, health, plots and report.html.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits

import nnrecipe
from mynets import DigitsCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/own-cnn")
    args = parser.parse_args()
    digits = load_digits()
    X = digits.images[:, None].astype(np.float32)  # [1797, 1, 8, 8]: normalized per channel on train
    y = digits.target
    run = nnrecipe.fit((X, y), model=DigitsCNN(width=32), model_kwargs={"width": 32}, seed=args.seed,
                       out=args.out, progress=True)
    print(f"run: {run.dir}")
    print(f"test accuracy {run.metrics['test']['accuracy']:.4f}, T = {run.temperature:.3f}, "
          f"val ECE {run.metrics['calibration']['ece_before']:.4f} -> {run.metrics['calibration']['ece_after']:.4f}")
    np.savez("digits_sample.npz", X=X[:5], y=y[:5])
    again = nnrecipe.load(run.dir)  # rebuilds DigitsCNN(width=32) from model.json
    print("reloaded predictions:", again.predict(X[:5]).tolist(), "labels:", y[:5].tolist())


if __name__ == "__main__":
    main()
