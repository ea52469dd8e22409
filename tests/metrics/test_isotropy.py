import math

import numpy as np
import pytest
import torch

from ftsweep.metrics import isotropy_score


def _direct_isotropy(v: np.ndarray) -> float:
    """min/max of Z(c) = sum_v exp(c^T v) over +-eigenvectors c of V^T V, by explicit loops.

    Eigenvectors come from an SVD of V (right singular vectors), not from V^T V's eigh.
    """
    _, _, vt = np.linalg.svd(v, full_matrices=False)
    zs = []
    for c in vt:
        for sign in (1.0, -1.0):
            zs.append(sum(math.exp(sign * float(np.dot(c, row))) for row in v))
    return min(zs) / max(zs)


@pytest.mark.parametrize("dim", [2, 5, 16])
def test_perfectly_isotropic_set_scores_one(dim: int) -> None:
    eye = np.eye(dim)
    v = np.concatenate([eye, -eye])  # +-e_i; V^T V = 2 I, whose eigen-solver basis is {e_i}
    assert isotropy_score(v) == pytest.approx(1.0, abs=1e-12)
    # norms large enough to overflow exp() still give 1 (log-sum-exp)
    assert isotropy_score(1000.0 * v) == pytest.approx(1.0, abs=1e-9)


def test_anisotropic_set_scores_below_one() -> None:
    eye = np.eye(4)
    scales = np.array([3.0, 1.5, 1.0, 0.5])
    v = np.concatenate([eye, -eye]) * scales  # +-s_i e_i
    # V^T V = diag(2 s_i^2) has distinct eigenvalues, so C = {+-e_i} and
    # Z(+-e_i) = exp(s_i) + exp(-s_i) + 6 (the 6 other vectors are orthogonal to e_i)
    z = [np.exp(s) + np.exp(-s) + 6 for s in scales]
    expected = min(z) / max(z)
    score = isotropy_score(v)
    assert score == pytest.approx(expected, rel=1e-12)
    assert score < 0.5
    # shifted (non-centred) embeddings are strongly anisotropic
    rng = np.random.default_rng(0)
    assert isotropy_score(rng.normal(size=(200, 8)) + 3.0) < 0.01


@pytest.mark.parametrize("seed", range(4))
def test_matches_direct_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(50, 6)) * rng.uniform(0.2, 2.0, size=6) + rng.normal(size=6)
    expected = _direct_isotropy(v)
    assert isotropy_score(v, chunk_size=4) == pytest.approx(expected, rel=1e-9)
    assert 0.0 < expected < 1.0


def test_torch_input_and_errors() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(30, 5))
    result = isotropy_score(torch.from_numpy(v))
    assert isinstance(result, float) and result == pytest.approx(isotropy_score(v))
    with pytest.raises(ValueError, match="embeddings must be non-empty"):
        isotropy_score(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="embeddings must be a 2-d array"):
        isotropy_score(np.zeros(3))
    with pytest.raises(ValueError, match="embeddings must be finite"):
        isotropy_score(np.array([[1.0, np.nan]]))
