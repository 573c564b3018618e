"""Ensembles by averaging: p̄ = (1/K) Σₖ pₖ for classifiers (each member's probabilities already
temperature-calibrated), ȳ = (1/K) Σₖ ŷₖ for regressors (Lakshminarayanan et al. 2017 use the same
mean of the members' predictive distributions)."""

from __future__ import annotations

import numpy as np


def average_probabilities(member_probs: list[np.ndarray]) -> np.ndarray:
    """Mean of the members' [N, C] probability matrices (rows still sum to 1)."""
    if not member_probs:
        raise ValueError("an ensemble needs at least one member")
    return np.mean(np.stack(member_probs), axis=0)


def average_predictions(member_preds: list[np.ndarray]) -> np.ndarray:
    if not member_preds:
        raise ValueError("an ensemble needs at least one member")
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in member_preds]), axis=0)
