"""Random and label-based selection, recall rate."""

from __future__ import annotations

import numpy as np
import pytest

from ftsweep.selection import label_selection, random_selection, recall_rate


def test_random_selection_reproducible_and_distinct() -> None:
    a = random_selection(1000, 100, seed=7)
    b = random_selection(1000, 100, seed=7)
    c = random_selection(1000, 100, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.sort(a), np.sort(c))
    assert a.dtype == np.int64 and np.unique(a).size == 100
    assert a.min() >= 0 and a.max() < 1000


def test_random_selection_is_uniform() -> None:
    num_units, k, trials = 20, 5, 4000
    counts = np.zeros(num_units)
    for seed in range(trials):
        counts[random_selection(num_units, k, seed=seed)] += 1
    expected = trials * k / num_units  # 1000 per unit
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45.0  # chi-square, 19 dof: P(chi2 > 45) < 1e-3


@pytest.mark.parametrize(("num_units", "k"), [(5, 0), (5, 6), (0, 1)])
def test_random_selection_bad_k(num_units: int, k: int) -> None:
    with pytest.raises(ValueError):
        random_selection(num_units, k, seed=0)


def test_label_selection_from_mapping() -> None:
    mapping = {0: [10, 11], 1: [11, 3], 2: [7]}
    np.testing.assert_array_equal(label_selection(mapping), [3, 7, 10, 11])
    np.testing.assert_array_equal(label_selection(mapping, [0, 2]), [7, 10, 11])
    np.testing.assert_array_equal(label_selection([5, 2, 5, 9]), [2, 5, 9])


def test_label_selection_errors() -> None:
    with pytest.raises(ValueError, match="not in the mapping"):
        label_selection({0: [1]}, [0, 4])
    with pytest.raises(ValueError, match="num_source_units"):
        label_selection({0: [1, 1000]}, num_source_units=1000)
    with pytest.raises(ValueError, match=">= 0"):
        label_selection([-1, 2])
    with pytest.raises(ValueError, match="empty"):
        label_selection({0: []})
    with pytest.raises(ValueError, match="dict mapping"):
        label_selection([1, 2], [0])


def test_recall_rate_by_hand() -> None:
    true_birds = list(range(10, 20))  # 10 "bird" classes
    selected = [10, 11, 12, 3, 4, 19]  # 4 of them selected
    assert recall_rate(selected, true_birds) == pytest.approx(0.4)
    assert recall_rate(true_birds, true_birds) == 1.0
    assert recall_rate([0, 1], true_birds) == 0.0
    assert recall_rate(np.array([58, 100]), np.arange(59)) == pytest.approx(1 / 59)


def test_recall_rate_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        recall_rate([1], [])
    with pytest.raises(ValueError, match="repeat"):
        recall_rate([1, 1], [1, 2])
