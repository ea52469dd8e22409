"""Clustering accuracy (target_pretraining.md, Eq. 8-9) and its k-means evaluation protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ftsweep.metrics.classification import ArrayLike, _check_same_length, _to_numpy

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ftsweep.data.registry import DatasetInfo

__all__ = ["clustering_accuracy", "clustering_metrics", "kmeans_clustering_accuracy"]


def clustering_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Accuracy of cluster indices under the best one-to-one cluster -> class mapping.

    Eq. 9: ``max_P (1/N) tr(P^T L_c^T L)`` with ``L_c^T L`` the (clusters x classes) contingency
    matrix and ``P`` a (partial) permutation (Eq. 8), solved by the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``, maximising). If the numbers of clusters and classes
    differ, ``min(#clusters, #classes)`` pairs are matched and points of unmatched clusters count
    as errors.

    Args:
        y_true: class labels with shape (num_samples,); any comparable values.
        y_pred: cluster indices with shape (num_samples,); any comparable values.

    Returns:
        Clustering accuracy in [0, 1].
    """
    t = _to_numpy(y_true, "y_true", ndim=1)
    p = _to_numpy(y_pred, "y_pred", ndim=1)
    _check_same_length(t, "y_true", p, "y_pred")
    classes, t_codes = np.unique(t, return_inverse=True)
    clusters, p_codes = np.unique(p, return_inverse=True)
    contingency = np.zeros((len(clusters), len(classes)), dtype=np.int64)  # L_c^T L
    np.add.at(contingency, (p_codes.reshape(-1), t_codes.reshape(-1)), 1)
    from scipy.optimize import linear_sum_assignment  # lazy: keeps `import trainables` light

    rows, cols = linear_sum_assignment(contingency, maximize=True)
    return float(contingency[rows, cols].sum() / len(t))


def kmeans_clustering_accuracy(
    features: ArrayLike,
    labels: ArrayLike,
    num_clusters: int,
    *,
    seed: int = 0,
    n_init: int = 10,
) -> float:
    """Cluster ``features`` with k-means and score the clusters with :func:`clustering_accuracy`.

    Args:
        features: Array or tensor with shape (num_samples, dim).
        labels: class labels with shape (num_samples,).
        num_clusters: number of k-means clusters, 1 <= num_clusters <= num_samples.
        seed: ``random_state`` of scikit-learn ``KMeans``.
        n_init: number of k-means restarts; the run with the lowest inertia is kept.

    Returns:
        Clustering accuracy in [0, 1].
    """
    x = _to_numpy(features, "features", ndim=2)
    y = _to_numpy(labels, "labels", ndim=1)
    _check_same_length(x, "features", y, "labels")
    if not 1 <= num_clusters <= x.shape[0]:
        raise ValueError(f"num_clusters must be in [1, num_samples={x.shape[0]}] but is {num_clusters}")
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1 but is {n_init}")
    from sklearn.cluster import KMeans  # lazy: keeps `import trainables` light

    kmeans = KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed)
    return clustering_accuracy(y, kmeans.fit_predict(x))


def clustering_metrics(
    backbone: nn.Module,
    device: torch.device,
    *,
    pool: np.ndarray,
    loaded: Any,
    info: DatasetInfo,
    seed: int = 0,
    n_init: int = 10,
    batch_size: int = 512,
) -> dict[str, float]:
    """``cluster/train_acc`` and ``cluster/test_acc`` (percent): k-means with K = #classes on the
    backbone features of the eval view, scored with the best one-to-one cluster → class mapping
    (Eq. 8-9). "Train" is the stage-1 pool (labels are used only for scoring).

    Args:
        backbone: maps an image batch (B, C, H, W) to features (B, D); its train/eval mode is
            restored afterwards.
        device: where the backbone runs.
        pool: indices of the scored images in ``loaded.train``.
        loaded: the loaded dataset (``train`` and ``test`` parts).
        info: the dataset's (resolved) info: eval view and number of classes.
        seed, n_init: of :func:`kmeans_clustering_accuracy`.
        batch_size: images per forward pass.
    """
    import torch  # lazy: ftsweep.engine imports ftsweep.metrics

    from ftsweep.data import ViewDataset, build_view
    from ftsweep.engine import extract_features, make_loader

    was_training = backbone.training
    backbone.eval()
    ev = build_view(info, "eval")
    out = {}
    parts = (
        ("train", ViewDataset(loaded.train, pool, ev)),
        ("test", ViewDataset(loaded.test, np.arange(len(loaded.test)), ev)),
    )
    with torch.no_grad():
        for name, ds in parts:
            feats, labels = extract_features(
                backbone, make_loader(ds, batch_size=batch_size, shuffle=False), device
            )
            acc = kmeans_clustering_accuracy(feats, labels, info.num_classes, seed=seed, n_init=n_init)
            out[f"cluster/{name}_acc"] = 100.0 * acc
    backbone.train(was_training)
    return out
