"""N-way K-shot few-shot evaluation on frozen features (SCHaNe's protocol, schane.md Sec. 4).

SCHaNe trains "an N-way logistic regression base classifier" from scikit-learn on each sampled
task, with 15 query images per class, and reports mean top-1 accuracy with a 95% confidence
interval. Features are L2-normalised first (SCHaNe L2-normalises encoder outputs; the
scikit-learn logistic-regression protocol it follows, Tian et al. 2020, does the same).
The paper samples 3,000 tasks per run; ``n_episodes`` defaults to 600, the common setting.
"""

from __future__ import annotations

import numpy as np

from ftsweep.metrics.classification import ArrayLike, _check_same_length, _to_numpy

_NORM_EPS = 1e-12  # guards the L2 normalisation of all-zero feature vectors


def fewshot_eval(
    features: ArrayLike,
    labels: ArrayLike,
    *,
    n_way: int,
    k_shot: int,
    n_query: int = 15,
    n_episodes: int = 600,
    seed: int = 0,
    l2_normalize: bool = True,
    C: float = 1.0,  # noqa: N803 (scikit-learn's name for the inverse regularisation strength)
    max_iter: int = 1000,
) -> tuple[float, float]:
    """Mean accuracy of logistic regression over random N-way K-shot episodes.

    Each episode draws ``n_way`` distinct classes among those with at least
    ``k_shot + n_query`` samples, then ``k_shot + n_query`` distinct samples of each class
    (without replacement): ``k_shot`` train (support) and ``n_query`` test (query) samples. A
    multinomial L2-regularised ``LogisticRegression(C=C, max_iter=max_iter)`` is fitted on the
    support set and its accuracy on the query set is recorded.

    Args:
        features: frozen features with shape (num_samples, dim).
        labels: class labels with shape (num_samples,).
        n_way: classes per episode, >= 2.
        k_shot: support samples per class, >= 1.
        n_query: query samples per class, >= 1.
        n_episodes: number of episodes, >= 1.
        seed: seed of the episode sampler; equal seeds give equal results.
        l2_normalize: divide every feature vector by its L2 norm first.
        C: inverse regularisation strength of the logistic regression.
        max_iter: maximum number of L-BFGS iterations of the logistic regression.

    Returns:
        ``(mean, ci95)``: mean query accuracy over episodes and the 95% confidence half-width
        ``1.96 * std(accuracies) / sqrt(n_episodes)`` (population std, ddof=0).

    Raises:
        ValueError: on bad arguments, or if fewer than ``n_way`` classes have
            ``k_shot + n_query`` samples.
    """
    for name, value, minimum in (
        ("n_way", n_way, 2),
        ("k_shot", k_shot, 1),
        ("n_query", n_query, 1),
        ("n_episodes", n_episodes, 1),
    ):
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum} but is {value}")
    x = _to_numpy(features, "features", ndim=2).astype(np.float64)
    y = _to_numpy(labels, "labels", ndim=1)
    _check_same_length(x, "features", y, "labels")
    if l2_normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _NORM_EPS)

    per_class = k_shot + n_query
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    pools = [np.flatnonzero(codes == i) for i in range(len(classes))]
    eligible = [pool for pool in pools if len(pool) >= per_class]
    if len(eligible) < n_way:
        raise ValueError(
            f"n_way={n_way} classes with at least k_shot + n_query = {k_shot} + {n_query} = "
            f"{per_class} samples are needed, but only {len(eligible)} of {len(classes)} "
            f"classes have that many"
        )

    from sklearn.linear_model import LogisticRegression  # lazy: keeps `import trainables` light

    rng = np.random.default_rng(seed)
    support_y = np.repeat(np.arange(n_way), k_shot)
    query_y = np.repeat(np.arange(n_way), n_query)
    accuracies = np.empty(n_episodes)
    for episode in range(n_episodes):
        chosen = rng.choice(len(eligible), size=n_way, replace=False)
        draws = np.stack([rng.choice(eligible[i], size=per_class, replace=False) for i in chosen])
        support, query = draws[:, :k_shot].reshape(-1), draws[:, k_shot:].reshape(-1)
        classifier = LogisticRegression(C=C, max_iter=max_iter)
        classifier.fit(x[support], support_y)
        accuracies[episode] = np.mean(classifier.predict(x[query]) == query_y)
    mean = float(accuracies.mean())
    ci95 = float(1.96 * accuracies.std() / np.sqrt(n_episodes))
    return mean, ci95
