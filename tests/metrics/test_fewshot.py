import numpy as np
import pytest
import torch

from ftsweep.metrics import fewshot_eval


def _blobs(num_classes: int, per_class: int, dim: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    directions = rng.normal(size=(num_classes, dim))
    features = directions[labels] + spread * rng.normal(size=(len(labels), dim))
    return features, labels


def test_separable_features_are_solved() -> None:
    features, labels = _blobs(num_classes=8, per_class=25, dim=16, spread=0.05)
    mean, ci = fewshot_eval(features, labels, n_way=5, k_shot=1, n_query=10, n_episodes=15)
    assert mean == pytest.approx(1.0, abs=0.01)
    assert 0.0 <= ci < 0.01


def test_noise_is_at_chance_within_ci() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(300, 64))
    labels = np.repeat(np.arange(10), 30)
    n_way = 5
    mean, ci = fewshot_eval(features, labels, n_way=n_way, k_shot=5, n_query=15, n_episodes=40, seed=2)
    assert 0.0 < ci < 0.03
    assert abs(mean - 1 / n_way) <= 2 * ci  # 2x the 95% half-width: ~1e-4 false-alarm rate


def test_reproducible_under_seed() -> None:
    features, labels = _blobs(num_classes=6, per_class=20, dim=8, spread=1.0)
    kwargs = dict(n_way=3, k_shot=2, n_query=5, n_episodes=8)
    first = fewshot_eval(features, labels, seed=7, **kwargs)
    assert first == fewshot_eval(features, labels, seed=7, **kwargs)
    assert first == fewshot_eval(torch.from_numpy(features), torch.from_numpy(labels), seed=7, **kwargs)
    assert first != fewshot_eval(features, labels, seed=8, **kwargs)
    assert all(isinstance(value, float) for value in first)


def test_l2_normalisation_removes_scale() -> None:
    # Per-sample rescaling is invisible after L2 normalisation.
    features, labels = _blobs(num_classes=5, per_class=20, dim=8, spread=1.0)
    scales = np.random.default_rng(3).uniform(0.1, 100.0, size=(len(labels), 1))
    kwargs = dict(n_way=3, k_shot=1, n_query=5, n_episodes=8, seed=0)
    assert fewshot_eval(features * scales, labels, **kwargs) == pytest.approx(
        fewshot_eval(features, labels, **kwargs)
    )


def test_small_classes_are_excluded() -> None:
    features, labels = _blobs(num_classes=4, per_class=12, dim=6, spread=0.05)
    labels = labels.copy()
    labels[labels == 3] = np.array([3] * 5 + [4] * 7)  # classes 3 (5) and 4 (7) are too small
    mean, _ = fewshot_eval(features, labels, n_way=3, k_shot=2, n_query=8, n_episodes=10)
    assert mean == pytest.approx(1.0)
    with pytest.raises(ValueError) as info:
        fewshot_eval(features, labels, n_way=4, k_shot=2, n_query=8, n_episodes=10)
    message = str(info.value)
    assert "n_way=4" in message and "2 + 8 = 10 samples" in message
    assert "only 3 of 5 classes" in message


def test_bad_arguments_raise() -> None:
    features, labels = _blobs(num_classes=4, per_class=10, dim=4, spread=1.0)
    with pytest.raises(ValueError, match="n_way must be >= 2 but is 1"):
        fewshot_eval(features, labels, n_way=1, k_shot=1)
    with pytest.raises(ValueError, match="k_shot must be >= 1 but is 0"):
        fewshot_eval(features, labels, n_way=2, k_shot=0)
    with pytest.raises(ValueError, match="features and labels must have the same length"):
        fewshot_eval(features, labels[:-1], n_way=2, k_shot=1, n_query=2)
    with pytest.raises(ValueError, match="features must be non-empty"):
        fewshot_eval(np.zeros((0, 4)), np.zeros(0), n_way=2, k_shot=1)
