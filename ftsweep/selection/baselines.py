"""Random and label-based selection of pre-training units (Sec. 3.2 of the UOT paper)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["label_selection", "random_selection"]


def random_selection(num_units: int, k: int, *, seed: int) -> np.ndarray:
    """Uniform selection of k distinct units out of num_units ("random selection").

    Args:
        num_units: Number of pre-training classes or clusters, >= 1.
        k: Number of units to draw, 1 <= k <= num_units.
        seed: Seed of ``numpy.random.default_rng``; the same seed gives the same units.

    Returns:
        int64 array with shape (k,), distinct unit indices in draw order.

    Raises:
        ValueError: If num_units < 1 or k is out of range.
    """
    for name, value in (("num_units", num_units), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if num_units < 1:
        raise ValueError(f"num_units must be >= 1, got {num_units}")
    if not 1 <= k <= num_units:
        raise ValueError(f"k must be in [1, num_units={num_units}], got {k}")
    rng = np.random.default_rng(seed)
    return rng.choice(num_units, size=k, replace=False).astype(np.int64)


def label_selection(
    mapping: Mapping[int, Iterable[int]] | Iterable[int],
    target_classes: Iterable[int] | None = None,
    *,
    num_source_units: int | None = None,
) -> np.ndarray:
    """Source classes that share labels with the target ("label-based selection").

    Args:
        mapping: Either a dict from target class to the source classes matching it
            (e.g. a CUB species to its ImageNet bird classes), or a flat iterable of source
            classes (e.g. the 59 ImageNet bird classes).
        target_classes: With a dict mapping, only these target classes' matches are used;
            all keys if None. Must be None for a flat mapping.
        num_source_units: If given, every source class must be in [0, num_source_units).

    Returns:
        int64 array with shape (num_selected,), the sorted distinct source classes.

    Raises:
        ValueError: If a target class is missing from the mapping, a source class is out of
            range or negative, or nothing is selected.
    """
    if isinstance(mapping, Mapping):
        keys = list(mapping.keys()) if target_classes is None else list(target_classes)
        missing = [t for t in keys if t not in mapping]
        if missing:
            raise ValueError(f"target classes {missing[:10]} are not in the mapping")
        sources = [int(s) for t in keys for s in mapping[t]]
    else:
        if target_classes is not None:
            raise ValueError("target_classes needs a dict mapping target -> source classes")
        sources = [int(s) for s in mapping]
    if not sources:
        raise ValueError("label selection is empty: no source class matches the target")
    out = np.unique(np.asarray(sources, dtype=np.int64))
    if out[0] < 0:
        raise ValueError(f"source classes must be >= 0, got {int(out[0])}")
    if num_source_units is not None and out[-1] >= num_source_units:
        raise ValueError(f"source classes must be < num_source_units={num_source_units}, got {int(out[-1])}")
    return out
