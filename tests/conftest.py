"""Shared fixtures: tiny CSV datasets generated per test, and a fast training config."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from testutil import FAST, write_csv

# Under pytest-xdist (`-n 2`, the README's test command) each worker owns one core: torch (and the
# CLI subprocesses tests start, which inherit the environment) use one thread, so the workers do not
# fight over the cores with spinning OpenMP threads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def blobs_csv(tmp_path) -> Path:
    """120 rows, 3 numeric features, string labels in 3 well-separated clusters."""
    rng = np.random.default_rng(0)
    rows = []
    for label, centre in (("cat", -3.0), ("dog", 0.0), ("eel", 3.0)):
        for _ in range(40):
            x = rng.normal(centre, 0.5, size=3)
            rows.append([*np.round(x, 5), label])
    rng.shuffle(rows)
    return write_csv(tmp_path / "blobs.csv", ["a", "b", "c", "animal"], rows)


@pytest.fixture
def fast():
    return list(FAST)
