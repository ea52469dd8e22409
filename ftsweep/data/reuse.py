"""Source/target pairs for reusing pre-training data, and the selected-source stream.

The UOT paper fine-tunes on a target set plus the part of the pre-training (source) set closest
to it. Offline there is no ImageNet, so this module builds a real pair from scikit-learn's
digits whose right answer is known:

- ``digits_source`` (30 classes): real digit images of all ten digits upright (classes 0–9), the
  same kind of images turned a quarter turn clockwise (``rot90``, classes 10–19: ten distractor
  classes) and with inverted intensities (``invert``, classes 20–29: ten more distractors).
- ``digits_target`` (5 classes): *other* upright digit images of the digits
  :data:`DIGITS_REUSE_TARGET_DIGITS`; its test part is digits' fixed test split restricted to
  those digits, so the self-supervised pretraining pool (digits' train part) never saw a test
  image.

Every original digit image (of digits' 1,797) is used at most once in the whole pair, so no
image is in both sets — not even as a rotated or inverted copy. The answer is known because the
target's images are drawn from the same distribution as the upright source class of the same
digit (same writers, same scanning, same preprocessing, randomly split), while every distractor
class differs from every target class by a transform no target image undergoes: a quarter turn
(not a symmetry of any digit's strokes — 180° is excluded because it maps 0, 1, 8 to themselves
and 6 to 9) or an intensity inversion (white background). The matching source unit of target
class ``i`` is therefore upright digit ``DIGITS_REUSE_TARGET_DIGITS[i]``, and only that.

:func:`true_matches` returns such known mappings (target class → matching source classes) for
registered pairs; :func:`unit_members` turns selected units into the indices of the source
images that the joint fine-tuning stream reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ftsweep.data.digits import DIGITS, TensorImageDataset, digits_images, digits_test_mask
from ftsweep.data.registry import DatasetInfo, LoadedDataset, register_dataset

__all__ = [
    "DIGITS_REUSE_DISTRACTORS",
    "DIGITS_REUSE_SEED",
    "DIGITS_REUSE_TARGET_DIGITS",
    "DIGITS_REUSE_TARGET_PER_CLASS",
    "DIGITS_SOURCE",
    "DIGITS_TARGET",
    "DigitsPair",
    "digits_pair",
    "known_pairs",
    "true_matches",
    "unit_members",
]

#: digits whose (other) images form the target set, in target-class order
DIGITS_REUSE_TARGET_DIGITS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: target training images per target digit (taken from digits' train part)
DIGITS_REUSE_TARGET_PER_CLASS = 40
#: distractor transforms, each adding ten source classes after the ten upright ones
DIGITS_REUSE_DISTRACTORS: tuple[str, ...] = ("rot90", "invert")
#: fixes which original image goes where; independent of any trial seed
DIGITS_REUSE_SEED = 0


def _apply(name: str, images: torch.Tensor) -> torch.Tensor:
    """A distractor transform of uint8 images with shape (N, C, H, W)."""
    if name == "rot90":
        return torch.rot90(images, k=-1, dims=(2, 3)).contiguous()  # clockwise quarter turn
    if name == "invert":
        return 255 - images
    raise KeyError(f"unknown distractor {name!r}")


@dataclass(frozen=True)
class DigitsPair:
    """The digits source/target pair with the provenance of every image.

    Attributes:
        source, target: the two datasets (``source.test`` is empty: the source is only reused
            for training).
        source_origin, target_train_origin, target_test_origin: int64 arrays, the index in
            ``digits_images()`` of the original image each item was made from.
        source_transform: per source image, ``upright`` or a distractor name.
    """

    source: LoadedDataset
    target: LoadedDataset
    source_origin: np.ndarray
    target_train_origin: np.ndarray
    target_test_origin: np.ndarray
    source_transform: np.ndarray


@lru_cache(maxsize=1)
def digits_pair() -> DigitsPair:
    """Build the pair (deterministic: fixed by :data:`DIGITS_REUSE_SEED`)."""
    images, targets = digits_images()
    test = digits_test_mask(targets)
    rng = np.random.default_rng(DIGITS_REUSE_SEED)
    groups = ("upright", *DIGITS_REUSE_DISTRACTORS)
    train_idx = np.flatnonzero(~test)
    per_digit = {d: rng.permutation(train_idx[targets[train_idx] == d]) for d in range(10)}
    # the same number of source images for every source class
    spare = min(
        len(idx) - (DIGITS_REUSE_TARGET_PER_CLASS if d in DIGITS_REUSE_TARGET_DIGITS else 0)
        for d, idx in per_digit.items()
    )
    per_source_class = spare // len(groups)

    tgt_train, tgt_train_y = [], []
    src_origin, src_y, src_tf = [], [], []
    for d in range(10):
        idx = per_digit[d]
        if d in DIGITS_REUSE_TARGET_DIGITS:
            tgt_train.append(idx[:DIGITS_REUSE_TARGET_PER_CLASS])
            tgt_train_y.append(np.full(DIGITS_REUSE_TARGET_PER_CLASS, DIGITS_REUSE_TARGET_DIGITS.index(d)))
            idx = idx[DIGITS_REUSE_TARGET_PER_CLASS:]
        for g, group in enumerate(groups):
            chunk = idx[g * per_source_class : (g + 1) * per_source_class]
            src_origin.append(chunk)
            src_y.append(np.full(len(chunk), 10 * g + d))
            src_tf.append(np.full(len(chunk), group))
    src_origin_a = np.concatenate(src_origin).astype(np.int64)
    src_y_a = np.concatenate(src_y).astype(np.int64)
    src_tf_a = np.concatenate(src_tf)
    src_images = images[torch.from_numpy(src_origin_a)].clone()
    for name in DIGITS_REUSE_DISTRACTORS:
        rows = torch.from_numpy(np.flatnonzero(src_tf_a == name))
        src_images[rows] = _apply(name, src_images[rows])

    tt_origin = np.concatenate(tgt_train).astype(np.int64)
    tt_y = np.concatenate(tgt_train_y).astype(np.int64)
    test_idx = np.flatnonzero(test)
    te_origin = test_idx[np.isin(targets[test_idx], DIGITS_REUSE_TARGET_DIGITS)].astype(np.int64)
    te_y = np.array([DIGITS_REUSE_TARGET_DIGITS.index(int(d)) for d in targets[te_origin]], dtype=np.int64)

    empty = TensorImageDataset(torch.empty((0, *images.shape[1:]), dtype=torch.uint8), np.empty(0, np.int64))
    source = LoadedDataset(
        train=TensorImageDataset(src_images, src_y_a),
        test=empty,
        train_targets=src_y_a,
        test_targets=np.empty(0, np.int64),
        class_names=tuple(f"{g}-{d}" for g in groups for d in range(10)),
    )
    target = LoadedDataset(
        train=TensorImageDataset(images[torch.from_numpy(tt_origin)].clone(), tt_y),
        test=TensorImageDataset(images[torch.from_numpy(te_origin)].clone(), te_y),
        train_targets=tt_y,
        test_targets=te_y,
        class_names=tuple(str(d) for d in DIGITS_REUSE_TARGET_DIGITS),
    )
    return DigitsPair(source, target, src_origin_a, tt_origin, te_origin, src_tf_a)


def _load_source(root: str = "", download: bool = False) -> LoadedDataset:
    del root, download
    return digits_pair().source


def _load_target(root: str = "", download: bool = False) -> LoadedDataset:
    del root, download
    return digits_pair().target


_COMMON = dict(
    image_size=DIGITS.image_size,
    mean=DIGITS.mean,
    std=DIGITS.std,
    hflip=False,
    grayscale=True,
    offline=True,
)

DIGITS_SOURCE = register_dataset(
    DatasetInfo(
        name="digits_source",
        num_classes=10 * (1 + len(DIGITS_REUSE_DISTRACTORS)),
        load=_load_source,
        num_train=1020,  # 34 images in each of the 30 classes (checked in tests/data/test_digits.py)
        num_test=0,
        description="digits reuse source pool: upright digits 0-9 + rot90 and inverted distractor classes",
        **_COMMON,  # type: ignore[arg-type]
    )
)
DIGITS_TARGET = register_dataset(
    DatasetInfo(
        name="digits_target",
        num_classes=len(DIGITS_REUSE_TARGET_DIGITS),
        load=_load_target,
        num_train=DIGITS_REUSE_TARGET_PER_CLASS * len(DIGITS_REUSE_TARGET_DIGITS),
        num_test=180,  # the digits test images of digits 0-4 (checked in tests/data/test_digits.py)
        description="digits reuse target: other upright images of digits 0-4 (test = digits test split)",
        **_COMMON,  # type: ignore[arg-type]
    )
)

_KNOWN: dict[tuple[str, str], dict[int, tuple[int, ...]]] = {
    ("digits_source", "digits_target"): {i: (d,) for i, d in enumerate(DIGITS_REUSE_TARGET_DIGITS)},
}


def known_pairs() -> list[tuple[str, str]]:
    """The (source, target) pairs whose true class mapping is known."""
    return sorted(_KNOWN)


def true_matches(source: str, target: str) -> dict[int, tuple[int, ...]] | None:
    """Target class → the source classes that truly match it, or None when unknown."""
    found = _KNOWN.get((source, target))
    return None if found is None else dict(found)


def unit_members(
    units: np.ndarray,
    selected: np.ndarray,
    *,
    subsample: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of the source images whose unit is selected.

    Args:
        units: int array with shape (N,), the unit (class or cluster) of every source image.
        selected: int array with shape (k,), the selected units.
        subsample: keep this fraction of each selected unit (at least one image), as the paper
            does when the target is sub-sampled (appendix A); all images when None.
        seed: picks the kept images.

    Returns:
        Sorted int64 array of positions in ``units``.
    """
    units = np.asarray(units, dtype=np.int64)
    selected = np.asarray(selected, dtype=np.int64)
    if subsample is not None and not 0.0 < subsample <= 1.0:
        raise ValueError(f"subsample must be in (0, 1], got {subsample}")
    rng = np.random.default_rng(seed)
    parts = []
    for u in np.sort(selected):
        idx = np.flatnonzero(units == u)
        if subsample is not None and len(idx):
            idx = np.sort(rng.permutation(idx)[: max(1, int(round(subsample * len(idx))))])
        parts.append(idx)
    return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
