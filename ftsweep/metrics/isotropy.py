"""Isotropy score of an embedding set (Mu & Viswanath, ICLR 2018), as used by SCHaNe (schane.md,
Appendix A.3, Eq. 5).

    I(V) = min_{c in C} Z(c) / max_{c in C} Z(c),    Z(c) = sum_{v in V} exp(c^T v),

with ``C`` the unit eigenvectors of ``V^T V``. An eigenvector is defined only up to sign, so ``C``
holds both ``c`` and ``-c`` for every eigenvector; this makes the score independent of the sign
convention of the eigen-solver. ``I = 1`` for a perfectly isotropic set, smaller is more
anisotropic. (schane.md's Eq. 5 prints the ratio as max/min, which is >= 1 and contradicts its own
text "a perfectly isotropic space obtains an IS score of 1 ... larger is more isotropic"; we use
Mu & Viswanath's min/max.) Embeddings are used as given: no centring, no normalisation.
"""

from __future__ import annotations

import numpy as np

from ftsweep.metrics.classification import ArrayLike, _to_numpy


def _log_sum_exp_columns(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a), axis=0))`` for a (num_samples, k) array, shifted by the column max."""
    peak = a.max(axis=0)
    return peak + np.log(np.exp(a - peak).sum(axis=0))


def isotropy_score(embeddings: ArrayLike, *, chunk_size: int = 256) -> float:
    """Mu & Viswanath isotropy ``min_c Z(c) / max_c Z(c)`` (schane.md Eq. 5, module docstring).

    ``log Z(c)`` is computed with ``logsumexp`` in float64, so large embedding norms do not
    overflow; the ratio is ``exp(min log Z - max log Z)``.

    Args:
        embeddings: Array or tensor with shape (num_samples, dim).
        chunk_size: eigenvectors projected at a time (memory O(num_samples * chunk_size)).

    Returns:
        Isotropy score in (0, 1]; 1 means perfectly isotropic.
    """
    v = _to_numpy(embeddings, "embeddings", ndim=2).astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("embeddings must be finite but contain NaN or inf")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 but is {chunk_size}")
    _, eigenvectors = np.linalg.eigh(v.T @ v)  # columns: unit eigenvectors, shape (dim, dim)
    log_z = []  # log Z(c) and log Z(-c) for every eigenvector c
    for start in range(0, eigenvectors.shape[1], chunk_size):
        projections = v @ eigenvectors[:, start : start + chunk_size]  # c^T v, (num_samples, k)
        log_z += [_log_sum_exp_columns(projections), _log_sum_exp_columns(-projections)]
    all_log_z = np.concatenate(log_z)
    return float(np.exp(all_log_z.min() - all_log_z.max()))
