"""Class means and cosine k-means units."""

from __future__ import annotations

import numpy as np
import pytest

from ftsweep.selection import class_means, cluster_units


def test_class_means_by_hand() -> None:
    feats = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [0.0, 0.0]])
    labels = np.array([5, 5, 2, 2])
    means, ids = class_means(feats, labels)
    np.testing.assert_array_equal(ids, [2, 5])
    np.testing.assert_allclose(means, [[5.0, 0.0], [2.0, 3.0]])


def test_class_means_empty_class_raises() -> None:
    feats = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"units \[1\] have no samples"):
        class_means(feats, np.array([0, 2, 2]), num_units=3)
    with pytest.raises(ValueError, match="num_units"):
        class_means(feats, np.array([0, 1, 3]), num_units=3)
    with pytest.raises(ValueError, match="shape"):
        class_means(feats, np.array([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        class_means(feats, np.array([0.0, 1.0, 1.0]))


def test_cluster_units_separates_directions() -> None:
    rng = np.random.default_rng(0)
    directions = np.eye(8)[:4]
    # Same direction at very different scales must share a cluster (cosine, not l2).
    scales = rng.uniform(0.1, 100.0, size=(400, 1))
    truth = np.repeat(np.arange(4), 100)
    feats = (directions[truth] + 0.05 * rng.normal(size=(400, 8))) * scales
    centroids, assign = cluster_units(feats, 4, seed=0, batch_size=128)
    assert centroids.shape == (4, 8) and assign.shape == (400,)
    assert assign.dtype == np.int64
    for c in range(4):
        assert np.unique(assign[truth == c]).size == 1
    assert np.unique(assign).size == 4
    again = cluster_units(feats, 4, seed=0, batch_size=128)[1]
    np.testing.assert_array_equal(assign, again)


def test_cluster_units_bad_inputs() -> None:
    with pytest.raises(ValueError, match="num_clusters"):
        cluster_units(np.ones((3, 2)), 4)
    with pytest.raises(ValueError, match="non-zero"):
        cluster_units(np.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match="finite"):
        cluster_units(np.full((3, 2), np.nan), 2)
