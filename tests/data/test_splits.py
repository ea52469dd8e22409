"""make_splits: disjoint, balanced, seeded; subsample, long tail and every error."""

from __future__ import annotations

import numpy as np
import pytest

from ftsweep.data import SplitError, long_tail_counts, make_splits

TARGETS = np.repeat(np.arange(4), 50)  # 4 classes × 50


def test_disjoint_cover_and_balance() -> None:
    s = make_splits(TARGETS, seed=0, val_fraction=0.2, labels_per_class=5)
    parts = [s.labeled, s.unlabeled, s.val]
    assert sum(map(len, parts)) == 200 and len(np.unique(np.concatenate(parts))) == 200
    assert np.bincount(TARGETS[s.val]).tolist() == [10] * 4
    assert np.bincount(TARGETS[s.labeled]).tolist() == [5] * 4
    assert len(s.unlabeled) == 200 - 40 - 20


def test_seeded() -> None:
    a = make_splits(TARGETS, seed=3, labels_per_class=2)
    b = make_splits(TARGETS, seed=3, labels_per_class=2)
    c = make_splits(TARGETS, seed=4, labels_per_class=2)
    assert np.array_equal(a.labeled, b.labeled) and np.array_equal(a.val, b.val)
    assert not np.array_equal(a.labeled, c.labeled)


def test_num_labels_and_no_budget() -> None:
    s = make_splits(TARGETS, seed=0, num_labels=8)
    assert np.bincount(TARGETS[s.labeled]).tolist() == [2] * 4
    full = make_splits(TARGETS, seed=0, val_fraction=0.1)
    assert len(full.unlabeled) == 0 and len(full.labeled) == 180


def test_subsample_and_long_tail() -> None:
    s = make_splits(TARGETS, seed=0, val_fraction=0.2, subsample=0.5)
    assert np.bincount(TARGETS[s.labeled]).tolist() == [20] * 4
    lt = make_splits(TARGETS, seed=0, val_fraction=0.2, long_tail_ratio=10.0)
    counts = sorted(np.bincount(TARGETS[lt.labeled]).tolist(), reverse=True)
    assert counts == sorted(long_tail_counts(40, 4, 10.0).tolist(), reverse=True) == [40, 18, 8, 4]


def test_long_tail_profile_formula() -> None:
    c = long_tail_counts(100, 5, 100.0)
    expected = [int(np.floor(100 * 100.0 ** (-k / 4))) for k in range(5)]
    assert c.tolist() == expected and c[0] / c[-1] == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels_per_class": 46}, "class 0 has only 45 training images"),
        ({"num_labels": 6}, "num_labels: 6 — must be a positive multiple of the 4 classes"),
        ({"labels_per_class": 0}, "labels_per_class: 0 — must be >= 1"),
        ({"val_fraction": 1.0}, "val_fraction: 1.0 — must be in [0, 1)"),
        ({"subsample": 0.0}, "subsample: 0.0 — must be in (0, 1]"),
        ({"long_tail_ratio": 0.5}, "long_tail_ratio: 0.5 — must be >= 1"),
        ({"labels_per_class": 2, "num_labels": 8}, "give at most one"),
    ],
)
def test_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(SplitError, match=None) as info:
        make_splits(TARGETS, seed=0, **kwargs)
    assert message in str(info.value)
