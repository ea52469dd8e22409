"""Greedy-OT (Cui et al. 2018 EMD domain similarity) on small cases solved by hand."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest

from ftsweep.selection import emd_similarity, greedy_ot_scores, greedy_ot_select


def _line(*xs: float) -> np.ndarray:
    """Points on the x-axis of the plane, shape (len(xs), 2)."""
    return np.array([[x, 0.0] for x in xs])


# Target: 0.6 of the mass at x=0, 0.4 at x=2. Source units at x = 1.0, 1.5, 2.5, -0.5.
TARGET = _line(0.0, 2.0)
TARGET_W = np.array([0.6, 0.4])
SOURCE = _line(1.0, 1.5, 2.5, -0.5)
# EMD of a single point s: 0.6 |s| + 0.4 |s - 2|.
HAND_EMD = np.array([1.0, 1.1, 1.7, 1.3])


def test_scores_by_hand() -> None:
    scores = greedy_ot_scores(SOURCE, TARGET, target_weights=TARGET_W, gamma=0.01)
    np.testing.assert_allclose(scores, np.exp(-0.01 * HAND_EMD), rtol=1e-12)


def test_ranked_selection_by_hand() -> None:
    top = greedy_ot_select(SOURCE, TARGET, 3, target_weights=TARGET_W)
    np.testing.assert_array_equal(top, [0, 1, 3])


def test_forward_selection_by_hand() -> None:
    # Step 1: unit 0 (EMD 1.0). Step 2, uniform weights 1/2 on the pair:
    # {1, 1.5}: 0.5*1 + 0.1*1.5 + 0.4*0.5 = 0.85; {1, 2.5}: 0.5 + 0.25 + 0.2 = 0.95;
    # {1, -0.5}: 0.5*0.5 + 0.1*1 + 0.4*1 = 0.75 -> unit 3, unlike the ranked top-2 [0, 1].
    chosen = greedy_ot_select(SOURCE, TARGET, 2, target_weights=TARGET_W, strategy="forward")
    np.testing.assert_array_equal(chosen, [0, 3])
    sim = emd_similarity(ot.dist(SOURCE[[0, 3]], TARGET, metric="euclidean"), None, TARGET_W, gamma=0.01)
    assert math.isclose(sim, math.exp(-0.01 * 0.75), rel_tol=1e-12)


def test_cosine_metric_by_hand() -> None:
    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    source = np.array([[1.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    # 1 - cos: [1-1/sqrt2, 1-1/sqrt2], [0, 1], [2, 1]; uniform target weights.
    expected = np.array([1 - 1 / math.sqrt(2), 0.5, 1.5])
    scores = greedy_ot_scores(source, target, metric="cosine", gamma=1.0)
    np.testing.assert_allclose(scores, np.exp(-expected), rtol=1e-12)
    np.testing.assert_array_equal(greedy_ot_select(source, target, 3, metric="cosine"), [0, 1, 2])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="metric"):
        greedy_ot_scores(SOURCE, TARGET, metric="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same feature dim"):
        greedy_ot_scores(SOURCE, np.ones((2, 3)))
    with pytest.raises(ValueError, match="k must be"):
        greedy_ot_select(SOURCE, TARGET, 5)
    with pytest.raises(ValueError, match="k must be"):
        greedy_ot_select(SOURCE, TARGET, 0, strategy="forward")
    with pytest.raises(ValueError, match="strategy"):
        greedy_ot_select(SOURCE, TARGET, 1, strategy="backward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target_weights"):
        greedy_ot_scores(SOURCE, TARGET, target_weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="gamma"):
        greedy_ot_scores(SOURCE, TARGET, gamma=0.0)
