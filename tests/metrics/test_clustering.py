import itertools

import numpy as np
import pytest
import torch

from ftsweep.metrics import clustering_accuracy, kmeans_clustering_accuracy


def _brute_force_accuracy(y_true: list[int], y_pred: list[int]) -> float:
    """Best accuracy over every injective cluster -> class (or class -> cluster) mapping."""
    classes, clusters = sorted(set(y_true)), sorted(set(y_pred))
    best = 0
    if len(clusters) <= len(classes):
        for image in itertools.permutations(classes, len(clusters)):
            mapping = dict(zip(clusters, image, strict=True))
            best = max(best, sum(mapping[p] == t for t, p in zip(y_true, y_pred, strict=True)))
    else:
        for image in itertools.permutations(clusters, len(classes)):
            mapping = dict(zip(classes, image, strict=True))
            best = max(best, sum(mapping[t] == p for t, p in zip(y_true, y_pred, strict=True)))
    return best / len(y_true)


def test_hand_computed() -> None:
    # a relabelled perfect clustering
    assert clustering_accuracy([0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1]) == 1.0
    # clusters {a: 0,0,1} {b: 1,1} -> a->0, b->1: 2 + 2 = 4 of 5
    assert clustering_accuracy([0, 0, 1, 1, 1], ["a", "a", "a", "b", "b"]) == pytest.approx(4 / 5)
    # more clusters than classes: 3 clusters, 2 classes; cluster 9 stays unmatched
    assert clustering_accuracy([0, 0, 1, 1], [5, 5, 7, 9]) == pytest.approx(3 / 4)
    # fewer clusters than classes: everything in one cluster -> size of the largest class
    assert clustering_accuracy([0, 1, 1, 2, 1], [3, 3, 3, 3, 3]) == pytest.approx(3 / 5)


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force_over_permutations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_classes, num_clusters = rng.integers(2, 6, size=2)
    n = int(rng.integers(10, 60))
    y_true = rng.integers(0, num_classes, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, num_clusters, n))
    expected = _brute_force_accuracy(y_true.tolist(), y_pred.tolist())
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(expected, abs=1e-15)
    assert clustering_accuracy(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == (
        pytest.approx(expected, abs=1e-15)
    )


def test_kmeans_clustering_accuracy() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    centres = 20.0 * rng.normal(size=(4, 5))
    separable = centres[labels] + rng.normal(size=(len(labels), 5))
    assert kmeans_clustering_accuracy(separable, labels, 4) == 1.0
    noise = rng.normal(size=(len(labels), 5))
    a = kmeans_clustering_accuracy(noise, labels, 4, seed=3, n_init=2)
    assert a == kmeans_clustering_accuracy(noise, labels, 4, seed=3, n_init=2)  # reproducible
    assert a < 0.6


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="y_true and y_pred must have the same length"):
        clustering_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="y_true must be non-empty"):
        clustering_accuracy([], [])
    with pytest.raises(ValueError, match="features and labels must have the same length"):
        kmeans_clustering_accuracy(np.zeros((4, 2)), np.zeros(3), 2)
    with pytest.raises(ValueError, match=r"num_clusters must be in \[1, num_samples=4\] but is 5"):
        kmeans_clustering_accuracy(np.zeros((4, 2)), np.zeros(4), 5)
