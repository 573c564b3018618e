"""The quality bar of the default recipe on real data (slow: trains 6 full runs; CI runs it)."""

from __future__ import annotations

import statistics

import pytest

import nnrecipe


@pytest.mark.slow
def test_default_fit_on_digits_meets_the_bar(tmp_path):
    accs = [nnrecipe.fit("digits", seed=s, out=tmp_path / f"d{s}").metrics["test"]["accuracy"] for s in (0, 1, 2)]
    assert statistics.mean(accs) >= 0.975, accs
    assert min(accs) >= 0.965, accs


@pytest.mark.slow
def test_default_fit_on_breast_cancer_meets_the_bar(tmp_path):
    accs = [nnrecipe.fit("breast_cancer", seed=s, out=tmp_path / f"b{s}").metrics["test"]["accuracy"]
            for s in (0, 1, 2)]
    assert statistics.mean(accs) >= 0.965, accs
