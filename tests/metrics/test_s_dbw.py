"""S_Dbw against a hand-computed case and brute-force loops that share no code with the
vectorised implementation (paper: Halkidi & Vazirgiannis 2001; official: s-dbw 0.4.0, 'Tong')."""

import math

import numpy as np
import pytest
import torch

from ftsweep.metrics import S_DBW_VARIANTS, s_dbw

# --------------------------------------------------------------------------- brute force


def _mean(ps: list[list[float]]) -> list[float]:
    return [sum(p[d] for p in ps) / len(ps) for d in range(len(ps[0]))]


def _var(ps: list[list[float]]) -> list[float]:
    m = _mean(ps)
    return [sum((p[d] - m[d]) ** 2 for p in ps) / len(ps) for d in range(len(ps[0]))]


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(a * a for a in v))


def _paper_brute_force(points: list[list[float]], labels: list[int]) -> tuple[float, float]:
    """(Scat, Dens_bw) of Halkidi & Vazirgiannis (2001), class means as centres."""
    clusters = sorted(set(labels))
    c = len(clusters)
    members = {k: [p for p, lab in zip(points, labels, strict=True) if lab == k] for k in clusters}
    centres = {k: _mean(members[k]) for k in clusters}
    scat = sum(_norm(_var(members[k])) for k in clusters) / c / _norm(_var(points))
    stdev = math.sqrt(sum(_norm(_var(members[k])) for k in clusters)) / c

    def density(u: list[float], i: int, j: int) -> int:
        return sum(1 for p in members[i] + members[j] if math.dist(p, u) <= stdev)

    total = 0.0
    for i in clusters:
        for j in clusters:
            if i == j:
                continue
            u = [(a + b) / 2 for a, b in zip(centres[i], centres[j], strict=True)]
            num = density(u, i, j)
            den = max(density(centres[i], i, j), density(centres[j], i, j))
            total += 0.0 if num == 0 else (num / den if den > 0 else math.inf)
    return scat, total / (c * (c - 1))


def _official_brute_force(points: list[list[float]], labels: list[int]) -> tuple[float, float]:
    """(Scat, Dens_bw) as s-dbw 0.4.0 computes them for method='Tong', alg_noise='bind',
    centr='mean', nearest_centr=True, metric='euclidean' (re-derived from its definition)."""
    clean = [k for k, lab in enumerate(labels) if lab != -1]
    bound = [
        lab if lab != -1 else labels[min(clean, key=lambda k, p=p: math.dist(p, points[k]))]
        for p, lab in zip(points, labels, strict=True)
    ]
    clusters = sorted(set(bound))
    c, n = len(clusters), len(points)
    members = {k: [p for p, lab in zip(points, bound, strict=True) if lab == k] for k in clusters}
    std = {k: [math.sqrt(v) for v in _var(members[k])] for k in clusters}
    size = {k: len(members[k]) for k in clusters}
    centre = {}
    for k in clusters:
        m = _mean(members[k])
        centre[k] = min(members[k], key=lambda p, m=m: math.dist(p, m))
    total_std = _norm([math.sqrt(v) for v in _var(points)])
    scat = sum((n - size[k]) / n * _norm(std[k]) for k in clusters) / (total_std * (c - 1))

    def count_in_box(ps: list[list[float]], u: list[float], half: list[float]) -> int:
        return sum(1 for p in ps if all(abs(a - b) <= h for a, b, h in zip(p, u, half, strict=True)))

    dens = {
        k: count_in_box(members[k], centre[k], [1.96 * s / math.sqrt(size[k]) for s in std[k]])
        for k in clusters
    }
    total = 0.0
    for i in clusters:
        for j in clusters:
            if i == j:
                continue
            nij = size[i] + size[j]
            u = [
                0.7 * (a * size[j] + b * size[i]) / nij
                + 0.3 * (a * dens[i] + b * dens[j]) / (dens[i] + dens[j])
                for a, b in zip(centre[i], centre[j], strict=True)
            ]
            half = [1.96 * (si + sj) / 2 / math.sqrt(nij) for si, sj in zip(std[i], std[j], strict=True)]
            count = count_in_box(members[i] + members[j], u, half)
            total += count / max(dens[i], dens[j])
    return scat, total / (c * (c - 1))


def _overlapping_blobs(seed: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 5))
    y = np.repeat(np.arange(c), int(rng.integers(15, 40)))
    x = rng.normal(size=(len(y), dim)) + 1.2 * rng.normal(size=(c, dim))[y]
    return x, y


# --------------------------------------------------------------------------- paper


def test_paper_hand_computed() -> None:
    # A = {(1,0),(0,0),(2,0),(1,1),(1,-1)}: mean (1,0), variance vector (2/5, 2/5)
    # B = {(4,0),(2.6,0),(5.4,0),(4,1),(4,-1)}: mean (4,0), variance ((2*1.4^2)/5, 2/5)
    #   = (0.784, 0.4)
    # S: mean x = 25/10 = 2.5, sum of squared x deviations = 28.42 -> variance (2.842, 0.4)
    # Scat = (||s_A|| + ||s_B||) / 2 / ||s_S||
    norm_a, norm_b = math.sqrt(0.4**2 + 0.4**2), math.sqrt(0.784**2 + 0.4**2)
    scat = (norm_a + norm_b) / 2 / math.sqrt(2.842**2 + 0.4**2)  # = 0.251886...
    # stdev = sqrt(norm_a + norm_b) / 2 = 0.601214; midpoint u = (2.5, 0)
    # density(u) = 2: (2,0) at 0.5 and (2.6,0) at 0.1; every other point is >= 1.5 away
    # density(v_A) = 1 (only (1,0) itself), density(v_B) = 1 (only (4,0) itself)
    # Dens_bw = (2/1 + 2/1) / (2 * 1) = 2
    expected = scat + 2.0
    x = np.array(
        [[1, 0], [0, 0], [2, 0], [1, 1], [1, -1], [4, 0], [2.6, 0], [5.4, 0], [4, 1], [4, -1]],
        dtype=float,
    )
    y = np.array([0] * 5 + [1] * 5)
    assert expected == pytest.approx(2.251886, abs=1e-6)
    assert s_dbw(x, y) == pytest.approx(expected, rel=1e-12)
    assert _paper_brute_force(x.tolist(), y.tolist()) == pytest.approx((scat, 2.0), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_paper_matches_brute_force(seed: int) -> None:
    x, y = _overlapping_blobs(seed, dim=2)
    scat, dens_bw = _paper_brute_force(x.tolist(), y.tolist())
    assert 0 < dens_bw < math.inf  # the density term is exercised, not just Scat
    assert s_dbw(x, y, variant="paper", chunk_size=7) == pytest.approx(scat + dens_bw, rel=1e-10)


def test_paper_zero_density_conventions() -> None:
    # Two far-apart pairs: no point within stdev of a mean or of the midpoint -> 0/0 := 0.
    x = np.array([[-1.0, 0], [1, 0], [9, 0], [11, 0]])
    y = np.array([0, 0, 1, 1])
    # variance vectors (1, 0) each; S variance (26, 0): Scat = 1/26, stdev = sqrt(2)/2 < 1
    assert s_dbw(x, y) == pytest.approx(1 / 26, rel=1e-12)
    # One pair straddling the midpoint (0,0) of both means: density(u) = 2 > 0 = density(v_i)
    x = np.array([[-3.0, 0], [-0.1, 0], [0.1, 0], [3, 0]])
    y = np.array([0, 1, 0, 1])
    assert s_dbw(x, y) == math.inf
    assert _paper_brute_force(x.tolist(), y.tolist())[1] == math.inf


# --------------------------------------------------------------------------- official


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dim", [1, 2, 20])
def test_official_matches_brute_force(seed: int, dim: int) -> None:
    x, y = _overlapping_blobs(seed, dim)
    if seed % 2:
        y = y.copy()
        y[[0, 7, len(y) - 1]] = -1  # noise points, bound to the nearest non-noise point
    scat, dens_bw = _official_brute_force(x.tolist(), y.tolist())
    if dim <= 2:
        assert dens_bw > 0  # the box counts are exercised
    assert s_dbw(x, y, variant="official", chunk_size=5) == pytest.approx(scat + dens_bw, rel=1e-12)


def _sine_data(n: int, dim: int, c: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    i, k = np.meshgrid(np.arange(n), np.arange(dim), indexing="ij")
    y = np.arange(n) % c
    return np.sin(1.3 * i + 0.7 * k) * spread + y[:, None] * 0.8 * np.cos(k), y


@pytest.mark.parametrize(
    ("args", "noise", "expected"),
    [
        # values printed by the s-dbw 0.4.0 package itself:
        # S_Dbw(x, y, method='Tong', alg_noise='bind', centr='mean', nearest_centr=True,
        #       metric='euclidean')
        ((60, 2, 3, 1.0), None, 1.7902310282334173),
        ((45, 5, 4, 0.5), None, 0.4539846361408217),
        ((80, 1, 2, 2.0), None, 2.102352991188005),
        ((60, 2, 3, 1.0), [5, 17, 40], 1.1234435096642639),
    ],
)
def test_official_matches_recorded_package_values(args, noise, expected) -> None:
    x, y = _sine_data(*args)
    if noise is not None:
        y[noise] = -1
    assert s_dbw(x, y, variant="official") == pytest.approx(expected, rel=1e-9)


def test_official_needs_fewer_clusters_than_samples() -> None:
    with pytest.raises(ValueError, match="between 2 and num_samples - 1 = 2 distinct values"):
        s_dbw(np.eye(3), np.array([0, 1, 2]), variant="official")


# --------------------------------------------------------------------------- both


@pytest.mark.parametrize("variant", S_DBW_VARIANTS)
def test_tighter_clusters_score_lower(variant: str) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 50)
    centres = 3.0 * rng.normal(size=(4, 8))
    noise = rng.normal(size=(len(y), 8))
    scores = [s_dbw(centres[y] + scale * noise, y, variant=variant) for scale in (2.0, 1.0, 0.3)]
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("variant", S_DBW_VARIANTS)
def test_label_values_and_input_type_do_not_matter(variant: str) -> None:
    x, y = _overlapping_blobs(3, dim=3)
    reference = s_dbw(x, y, variant=variant)
    relabelled = np.array([10, 3, 7, 42])[y]  # order-changing relabelling
    assert s_dbw(x, relabelled, variant=variant) == pytest.approx(reference, rel=1e-12)
    from_torch = s_dbw(torch.from_numpy(x).float(), torch.from_numpy(y), variant=variant)
    assert isinstance(from_torch, float)
    assert from_torch == pytest.approx(reference, rel=1e-5)
    from_bf16 = s_dbw(torch.from_numpy(x).bfloat16(), torch.from_numpy(y), variant=variant)
    assert from_bf16 == pytest.approx(reference, rel=0.1)


@pytest.mark.parametrize("variant", S_DBW_VARIANTS)
def test_bad_inputs_raise(variant: str) -> None:
    x = np.zeros((4, 2))
    x[:, 0] = np.arange(4)
    with pytest.raises(ValueError, match="features and labels must have the same length"):
        s_dbw(x, np.array([0, 1, 0]), variant=variant)
    with pytest.raises(ValueError, match="features must be non-empty"):
        s_dbw(np.zeros((0, 2)), np.zeros(0), variant=variant)
    with pytest.raises(ValueError, match="features must be a 2-d array"):
        s_dbw(np.zeros(4), np.array([0, 1, 0, 1]), variant=variant)
    with pytest.raises(ValueError, match=r"at least 2 distinct clusters but found 1 \(\[7\]\)"):
        s_dbw(x, np.full(4, 7), variant=variant)
    with pytest.raises(ValueError, match="features must not be all identical"):
        s_dbw(np.ones((4, 2)), np.array([0, 1, 0, 1]), variant=variant)


def test_unknown_variant_raises() -> None:
    with pytest.raises(ValueError, match=r"variant must be one of \('paper', 'official'\)"):
        s_dbw(np.eye(3), np.array([0, 1, 1]), variant="Tong")
