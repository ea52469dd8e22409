"""S_Dbw cluster validity index (Halkidi & Vazirgiannis, ICDM 2001), used by COIN as a measure of
the semantic quality of a feature space (coin.md, Sec. 4: ``S_Dbw = Scat + Dens_bw``, lower is
better). Clusters are the ground-truth classes.

Two variants:

``variant="paper"`` — Halkidi & Vazirgiannis (2001) with class means ``v_i`` as centres::

    sigma(X)   = (1/|X|) sum_{x in X} (x - mean(X))**2         (per-dimension variance vector)
    Scat       = (1/c) sum_i ||sigma(v_i)|| / ||sigma(S)||
    stdev      = (1/c) sqrt(sum_i ||sigma(v_i)||)
    density_ij(u) = |{x in c_i U c_j : ||x - u|| <= stdev}|
    Dens_bw    = 1/(c(c-1)) sum_{i != j} density_ij(u_ij) / max(density_ij(v_i), density_ij(v_j))
    S_Dbw      = Scat + Dens_bw,            u_ij = (v_i + v_j) / 2

A term with ``max(density_ij(v_i), density_ij(v_j)) = 0`` is taken as 0 if ``density_ij(u_ij) = 0``
and +inf otherwise. This case is the rule, not the exception, in high dimension: ``stdev`` shrinks
like ``dim**(1/4) / sqrt(c)`` times the per-dimension spread while distances to a centre grow like
``sqrt(dim)`` times it, so balls of radius ``stdev`` are empty and ``S_Dbw ~ Scat``.

``variant="official"`` — what COIN's public code logs: ``s_dbw.S_Dbw(X, labels, method='Tong',
alg_noise='bind', centr='mean', nearest_centr=True, metric='euclidean')`` of the ``s-dbw`` 0.4.0
package (Tong & Tan, J. Electron. (China) 26:258, 2009, as implemented there). With
``s_i = std(c_i)`` the per-dimension *standard deviation* (ddof=0), ``n_i = |c_i|``, ``n = |S|``:

1. Points labelled ``-1`` (noise) take the label of their nearest non-noise point.
2. Centre ``w_i``: the member of ``c_i`` nearest (euclidean) to the class mean (first on ties).
3. ``Scat = sum_i ((n - n_i)/n) ||s_i|| / (||std(S)|| (c - 1))``.
4. ``d_i = |{x in c_i : |x - w_i| <= 1.96 s_i / sqrt(n_i) in every dimension}|`` (>= 1, since
   ``w_i`` itself is counted).
5. For each pair: ``s_ij = (s_i + s_j)/2``, ``n_ij = n_i + n_j``, centre
   ``u_ij = 0.7 (w_i n_j + w_j n_i)/n_ij + 0.3 (w_i d_i + w_j d_j)/(d_i + d_j)``, and
   ``d_ij = |{x in c_i U c_j : |x - u_ij| <= 1.96 s_ij / sqrt(n_ij) in every dimension}|``.
6. ``Dens_bw = 1/(c(c-1)) sum_{i != j} d_ij / max(d_i, d_j)``; ``S_Dbw = Scat + Dens_bw``.

Differences (see docs/deviations.md, "Metrics: S_Dbw"): official uses std instead of variance,
weights each cluster's scatter by ``(n - n_i)/n`` and divides by ``c - 1``; its neighbourhoods are
per-dimension boxes whose half-width shrinks as ``1/sqrt(n)`` instead of one euclidean ball of
radius ``stdev``; its centres are data points, its pair centre is not the midpoint, and its
cluster densities count only the cluster's own points. In high dimension the box almost only
contains the centre point itself, so official ``Dens_bw`` is typically ~0 and ``S_Dbw ~ Scat``.

Both variants compute in float64; distances of the paper variant use the Gram expansion
``||x||^2 - 2 x.u + ||u||^2`` in row chunks (extra memory O(chunk_size * c + c^2 + c * dim),
never O(n^2)), so points within ~1e-12 (relative) of the ``stdev`` sphere may be counted either
way. The official variant reproduces the package to ~1e-15 (float64 rounding of sums).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ftsweep.metrics.classification import ArrayLike, _check_same_length, _to_numpy

S_DBW_VARIANTS: tuple[str, ...] = ("paper", "official")

# Constants fixed by the s-dbw 0.4.0 package for method="Tong" (not tunable: "official" means
# whatever that package computes).
_TONG_LAMBDA = 0.7
_TONG_Z = 1.96
# Number of leading dimensions tested before the full box test (pure speed-up, same result).
_BOX_HEAD_DIMS = 16


def s_dbw(
    features: ArrayLike,
    labels: ArrayLike,
    *,
    variant: str = "paper",
    chunk_size: int = 4096,
) -> float:
    """S_Dbw validity index of ``features`` partitioned by ``labels`` (lower is better).

    Args:
        features: Array or tensor with shape (num_samples, dim).
        labels: Cluster (class) labels with shape (num_samples,). At least 2 distinct labels.
            For ``variant="official"``, label ``-1`` marks noise points (bound to the cluster of
            their nearest non-noise point) and fewer than ``num_samples`` labels are required.
        variant: ``"paper"`` (Halkidi & Vazirgiannis 2001, the module docstring's equations) or
            ``"official"`` (s-dbw 0.4.0, ``method='Tong'``, as logged by COIN's public code).
        chunk_size: rows per block in the distance computations.

    Returns:
        ``Scat + Dens_bw``.

    Raises:
        ValueError: on empty or mismatched inputs, fewer than 2 clusters, an unknown variant or
            zero total variance.
    """
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {S_DBW_VARIANTS} but is {variant!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 but is {chunk_size}")
    x = _to_numpy(features, "features", ndim=2).astype(np.float64)
    y = _to_numpy(labels, "labels", ndim=1)
    _check_same_length(x, "features", y, "labels")
    return _VARIANTS[variant](x, y, chunk_size)


def _encode(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels -> codes 0..c-1 (in sorted label order) and c; raise if c < 2."""
    uniques, codes = np.unique(y, return_inverse=True)
    if len(uniques) < 2:
        raise ValueError(
            f"labels must contain at least 2 distinct clusters but found {len(uniques)} ({uniques.tolist()})"
        )
    return codes.reshape(-1), len(uniques)


def _group(codes: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorting ``codes`` (stable) and bounds: cluster i is ``order[b[i]:b[i + 1]]``."""
    order = np.argsort(codes, kind="stable")
    return order, np.searchsorted(codes[order], np.arange(c + 1))


def _column_variance(x: np.ndarray, chunk_size: int) -> np.ndarray:
    """Per-dimension population variance of ``x`` (num_samples, dim), without an O(n*dim) temp."""
    mean = x.mean(axis=0)
    total = np.zeros(x.shape[1])
    for start in range(0, x.shape[0], chunk_size):
        centred = x[start : start + chunk_size] - mean
        total += np.einsum("ij,ij->j", centred, centred)
    return total / x.shape[0]


def _s_dbw_paper(x: np.ndarray, y: np.ndarray, chunk_size: int) -> float:
    """Halkidi & Vazirgiannis (2001) S_Dbw with class means as centres (module docstring)."""
    codes, c = _encode(y)
    order, bounds = _group(codes, c)
    x -= x.mean(axis=0)  # own float64 copy; distances are translation invariant, centring
    # limits the cancellation of the Gram expansion below
    centres = np.empty((c, x.shape[1]))
    var_norms = np.empty(c)
    for i in range(c):
        members = x[order[bounds[i] : bounds[i + 1]]]
        centres[i] = members.mean(axis=0)
        var_norms[i] = np.linalg.norm(((members - centres[i]) ** 2).mean(axis=0))
    total_var_norm = np.linalg.norm(_column_variance(x, chunk_size))
    if total_var_norm == 0.0:
        raise ValueError("features must not be all identical: ||sigma(S)|| = 0 (Scat undefined)")
    scat = float(var_norms.mean() / total_var_norm)
    stdev = np.sqrt(var_norms.sum()) / c
    radius_sq = stdev**2

    sq_norm_v = np.einsum("ij,ij->i", centres, centres)
    gram_v = centres @ centres.T
    # ||u_ij||^2 for u_ij = (v_i + v_j) / 2
    sq_norm_u = (sq_norm_v[:, None] + 2.0 * gram_v + sq_norm_v[None, :]) / 4.0
    # near_centre[a, j] = #{x in c_a : ||x - v_j|| <= stdev}
    # near_mid[a, j]    = #{x in c_a : ||x - u_aj|| <= stdev}
    near_centre = np.zeros((c, c), dtype=np.int64)
    near_mid = np.zeros((c, c), dtype=np.int64)
    for start in range(0, x.shape[0], chunk_size):
        rows = order[start : start + chunk_size]  # sorted by cluster
        xb, cb = x[rows], codes[rows]
        sq_norm_x = np.einsum("ij,ij->i", xb, xb)
        dots = xb @ centres.T  # (chunk, c)
        d2_centre = sq_norm_x[:, None] - 2.0 * dots + sq_norm_v[None, :]
        own = dots[np.arange(len(cb)), cb]
        d2_mid = sq_norm_x[:, None] - own[:, None] - dots + sq_norm_u[cb]
        present, seg_starts = np.unique(cb, return_index=True)
        near_centre[present] += np.add.reduceat(d2_centre <= radius_sq, seg_starts, dtype=np.int64)
        near_mid[present] += np.add.reduceat(d2_mid <= radius_sq, seg_starts, dtype=np.int64)

    dens_mid = near_mid + near_mid.T  # density_ij(u_ij), symmetric
    diag = np.diag(near_centre)
    dens_vi = diag[:, None] + near_centre.T  # [i, j] -> density_ij(v_i) = A[i, i] + A[j, i]
    denominator = np.maximum(dens_vi, dens_vi.T)
    off_diag = ~np.eye(c, dtype=bool)
    numerator = dens_mid[off_diag].astype(np.float64)
    denominator = denominator[off_diag].astype(np.float64)
    # 0/0 := 0 (nothing near the centres nor between them); x/0 := inf for x > 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(numerator == 0, 0.0, numerator / denominator)
    dens_bw = float(ratios.sum() / (c * (c - 1)))
    return scat + dens_bw


def _bind_noise(x: np.ndarray, y: np.ndarray, chunk_size: int) -> np.ndarray:
    """Give every point labelled -1 the label of its nearest (euclidean) non-noise point."""
    if not np.issubdtype(y.dtype, np.number):
        return y
    noise = y == -1
    if not noise.any():
        return y
    clean = np.flatnonzero(~noise)
    y = y.copy()
    for start in range(0, int(noise.sum()), chunk_size):
        rows = np.flatnonzero(noise)[start : start + chunk_size]
        xr = x[rows]
        best_d2 = np.full(len(rows), np.inf)
        best = np.zeros(len(rows), dtype=np.int64)
        for c_start in range(0, len(clean), chunk_size):
            cand = clean[c_start : c_start + chunk_size]
            xc = x[cand]
            # ||x_r - x_c||^2 up to the per-row constant ||x_r||^2
            d2 = np.einsum("ij,ij->i", xc, xc)[None, :] - 2.0 * (xr @ xc.T)
            arg = np.argmin(d2, axis=1)
            val = d2[np.arange(len(rows)), arg]
            better = val < best_d2  # strict: the first nearest point wins ties
            best_d2[better], best[better] = val[better], cand[arg[better]]
        y[rows] = y[best]
    return y


def _count_in_box(
    head: np.ndarray,
    x: np.ndarray,
    rows: np.ndarray,
    centre: np.ndarray,
    half_width: np.ndarray,
) -> int:
    """Number of ``x[rows]`` with ``|x - centre| <= half_width`` in every dimension.

    ``head`` holds ``x[rows, :h]`` so most points are rejected without reading full rows.
    """
    h = head.shape[1]
    inside = np.all(np.abs(head - centre[:h]) <= half_width[:h], axis=1)
    if h == x.shape[1] or not inside.any():
        return int(inside.sum())
    survivors = x[rows[inside], h:]
    return int(np.all(np.abs(survivors - centre[h:]) <= half_width[h:], axis=1).sum())


def _s_dbw_official(x: np.ndarray, y: np.ndarray, chunk_size: int) -> float:
    """s-dbw 0.4.0 ``S_Dbw(method='Tong', alg_noise='bind', centr='mean', nearest_centr=True)``."""
    n = x.shape[0]
    _, num_labels = _encode(y)  # raises if fewer than 2 labels (noise label -1 included)
    if num_labels > n - 1:
        raise ValueError(
            f"labels must contain between 2 and num_samples - 1 = {n - 1} distinct values "
            f"(noise label -1 included) for variant='official' but contain {num_labels}"
        )
    y = _bind_noise(x, y, chunk_size)
    codes, c = _encode(y)

    order, bounds = _group(codes, c)
    members = [order[bounds[i] : bounds[i + 1]] for i in range(c)]
    head = x[order, :_BOX_HEAD_DIMS]
    heads = [head[bounds[i] : bounds[i + 1]] for i in range(c)]

    sizes = np.array([len(m) for m in members])
    stds = np.empty((c, x.shape[1]))
    centres = np.empty_like(stds)
    for i, rows in enumerate(members):
        xi = x[rows]
        stds[i] = xi.std(axis=0)
        d2 = ((xi - xi.mean(axis=0)) ** 2).sum(axis=1)
        centres[i] = xi[np.argmin(d2)]

    std_norms = np.linalg.norm(stds, axis=1)
    total_std_norm = np.linalg.norm(np.sqrt(_column_variance(x, chunk_size)))
    if total_std_norm == 0.0:
        raise ValueError("features must not be all identical: ||std(S)|| = 0 (Scat undefined)")
    scat = float(((n - sizes) / n * std_norms).sum() / (total_std_norm * (c - 1)))

    density = np.array(
        [
            _count_in_box(heads[i], x, members[i], centres[i], _TONG_Z * stds[i] / np.sqrt(n_i))
            for i, n_i in enumerate(sizes)
        ]
    )
    if np.count_nonzero(density == 0) > 1:
        raise ValueError("S_Dbw (official) is undefined: two or more clusters have density 0")

    total = 0.0
    for i in range(c):
        for j in range(i + 1, c):
            n_ij = sizes[i] + sizes[j]
            centre = _TONG_LAMBDA * (centres[i] * sizes[j] + centres[j] * sizes[i]) / n_ij + (
                1 - _TONG_LAMBDA
            ) * ((centres[i] * density[i] + centres[j] * density[j]) / (density[i] + density[j]))
            half_width = _TONG_Z * ((stds[i] + stds[j]) / 2) / np.sqrt(n_ij)
            count = _count_in_box(heads[i], x, members[i], centre, half_width) + _count_in_box(
                heads[j], x, members[j], centre, half_width
            )
            # pairs (i, j) and (j, i) contribute the same term
            total += 2.0 * count / max(density[i], density[j])
    dens_bw = total / (c * (c - 1))
    return scat + dens_bw


_VARIANTS: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "paper": _s_dbw_paper,
    "official": _s_dbw_official,
}
