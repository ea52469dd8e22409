"""Selection units: class means (labelled pre-training data) and cosine k-means clusters.

Sec. 3.2 / 4.1 of the UOT paper: with labels, each pre-training class is a unit represented by
its mean feature ``b_j = sum_{y_t = j} v_t / m_j``; without labels (self-supervised
pre-training) the features are clustered by k-means with cosine similarity (K = 2000) and each
cluster is a unit, represented by the mean of its members' features.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["class_means", "cluster_units"]


def _check_features(features: np.ndarray) -> np.ndarray:
    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"features must have non-empty shape (num_samples, dim), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("features must be finite, found NaN/inf entries")
    return arr


def class_means(
    features: np.ndarray, labels: np.ndarray, *, num_units: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean feature of every unit (class or cluster), on unnormalised features (Sec. 3.2).

    Args:
        features: Array with shape (num_samples, dim).
        labels: Integer array with shape (num_samples,), the unit of each sample.
        num_units: If given, units are 0..num_units-1 and every one must have a sample;
            otherwise the units are the distinct labels present.

    Returns:
        ``(means, unit_ids)``: float64 array with shape (num_units, dim) and int64 array with
        shape (num_units,); ``means[i]`` is the mean over samples with label ``unit_ids[i]``.

    Raises:
        ValueError: On shape mismatch, non-integer or out-of-range labels, or an empty unit.
    """
    feats = _check_features(features)
    lab = np.asarray(labels)
    if lab.shape != (feats.shape[0],):
        raise ValueError(f"labels must have shape ({feats.shape[0]},) to match features, got {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    if num_units is None:
        unit_ids, inverse = np.unique(lab, return_inverse=True)
    else:
        if lab.min() < 0 or lab.max() >= num_units:
            raise ValueError(
                f"labels must be in [0, num_units={num_units}), got range "
                f"[{int(lab.min())}, {int(lab.max())}]"
            )
        unit_ids, inverse = np.arange(num_units, dtype=np.int64), lab
    counts = np.bincount(inverse, minlength=unit_ids.size)
    if np.any(counts == 0):
        empty = unit_ids[counts == 0][:10].tolist()
        raise ValueError(f"units {empty} have no samples; cannot compute their mean")
    sums = np.zeros((unit_ids.size, feats.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, feats)
    return sums / counts[:, None], unit_ids


def cluster_units(
    features: np.ndarray,
    num_clusters: int = 2000,
    *,
    seed: int = 0,
    batch_size: int = 4096,
    max_iter: int = 100,
    n_init: int = 1,
    init: Literal["k-means++", "random"] = "k-means++",
    init_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-means of the features: L2-normalise, then scikit-learn ``MiniBatchKMeans``.

    On unit vectors the squared Euclidean distance is ``2 - 2 cos``, so k-means on the
    normalised features clusters by cosine similarity (Sec. 4.1, K = 2000).

    Args:
        features: Array with shape (num_samples, dim), e.g. 128-dim MoCo-v2 features.
        num_clusters: Number of clusters K, 1 <= K <= num_samples.
        seed: Random state of the k-means initialisation and mini-batches.
        batch_size: Mini-batch size (scikit-learn recommends well above K on many cores).
        max_iter: Maximum number of passes over the data.
        n_init: Number of initialisations; the best inertia is kept.
        init: ``"k-means++"`` or ``"random"`` initial centroids. k-means++ dominates the run
            time for K = 2000 on a few cores; ``"random"`` is several times faster.
        init_size: Samples used to initialise; ``3 * num_clusters`` if None (scikit-learn's
            default, ``3 * batch_size``, costs more without helping at K = 2000).

    Returns:
        ``(centroids, assignments)``: float32 array with shape (num_clusters, dim), the
        centroids in the normalised feature space, and int64 array with shape
        (num_samples,), the cluster of each sample. A cluster may end up with no sample;
        :func:`class_means` on the assignments then yields only the non-empty ones.

    Raises:
        ValueError: On empty/non-finite features, zero-norm rows or num_clusters out of range.
    """
    feats = _check_features(features).astype(np.float32, copy=False)
    if isinstance(num_clusters, bool) or not 1 <= num_clusters <= feats.shape[0]:
        raise ValueError(f"num_clusters must be in [1, num_samples={feats.shape[0]}], got {num_clusters!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("features rows must have non-zero L2 norm for cosine k-means")
    unit = feats / norms
    from sklearn.cluster import MiniBatchKMeans  # lazy: keeps `import trainables` light

    km = MiniBatchKMeans(
        n_clusters=num_clusters,
        random_state=seed,
        batch_size=batch_size,
        max_iter=max_iter,
        n_init=n_init,
        init=init,
        init_size=min(feats.shape[0], 3 * num_clusters) if init_size is None else init_size,
    )
    assignments = km.fit_predict(unit)
    return km.cluster_centers_.astype(np.float32), assignments.astype(np.int64)
