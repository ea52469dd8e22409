"""The digits source/target pair: disjoint, deterministic, known answer; the selected stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ftsweep.data import DATASETS, digits_images, load_dataset
from ftsweep.data.digits import digits_test_mask
from ftsweep.data.reuse import (
    DIGITS_REUSE_TARGET_DIGITS,
    digits_pair,
    true_matches,
    unit_members,
)
from ftsweep.selection import class_means, select, uot_scores


def test_registered_with_consistent_facts() -> None:
    for name in ("digits_source", "digits_target"):
        info = DATASETS[name]
        loaded = load_dataset(name)
        assert info.offline
        assert info.num_classes == len(np.unique(loaded.train_targets))
    assert DATASETS["digits_target"].num_train == len(load_dataset("digits_target").train)


def test_no_original_image_is_used_twice() -> None:
    pair = digits_pair()
    origins = np.concatenate([pair.source_origin, pair.target_train_origin, pair.target_test_origin])
    assert len(np.unique(origins)) == len(origins)
    _, targets = digits_images()
    test = digits_test_mask(targets)
    # the target's test images are digits' test images; nothing else is
    assert test[pair.target_test_origin].all()
    assert not test[pair.source_origin].any() and not test[pair.target_train_origin].any()
    # and the test part holds every test image of the target digits
    expected = np.flatnonzero(test & np.isin(targets, DIGITS_REUSE_TARGET_DIGITS))
    np.testing.assert_array_equal(np.sort(pair.target_test_origin), expected)


def test_images_and_labels_follow_their_origin() -> None:
    """Each item is its original digit image, untouched (upright) or rotated/inverted by hand."""
    pair = digits_pair()
    images, targets = digits_images()
    src = pair.source.train
    for i in range(0, len(src), 7):
        orig = images[pair.source_origin[i]].numpy()
        img, label = src[i]
        digit = int(targets[pair.source_origin[i]])
        tf = pair.source_transform[i]
        if tf == "upright":
            want, want_label = orig, digit
        elif tf == "rot90":  # clockwise: out[r, c] = in[H-1-c, r]
            h = orig.shape[1]
            want = np.stack([[[ch[h - 1 - c, r] for c in range(h)] for r in range(h)] for ch in orig])
            want_label = 10 + digit
        else:
            assert tf == "invert"
            want, want_label = 255 - orig.astype(np.int64), 20 + digit
        np.testing.assert_array_equal(img.numpy().astype(np.int64), np.asarray(want, dtype=np.int64))
        assert label == want_label
    for part, origin in (
        (pair.target.train, pair.target_train_origin),
        (pair.target.test, pair.target_test_origin),
    ):
        for i in range(0, len(part), 5):
            img, label = part[i]
            assert torch.equal(img, images[origin[i]])
            assert DIGITS_REUSE_TARGET_DIGITS[label] == int(targets[origin[i]])


def test_deterministic_rebuild() -> None:
    first = digits_pair()
    digits_pair.cache_clear()
    second = digits_pair()
    assert first is not second
    assert torch.equal(first.source.train.images, second.source.train.images)
    np.testing.assert_array_equal(first.source.train_targets, second.source.train_targets)
    assert torch.equal(first.target.train.images, second.target.train.images)
    np.testing.assert_array_equal(first.target_test_origin, second.target_test_origin)


def test_balanced_source_classes() -> None:
    counts = np.bincount(digits_pair().source.train_targets)
    assert len(counts) == 30 and counts.min() == counts.max() > 0


def test_true_matches() -> None:
    assert true_matches("digits_source", "digits_target") == {
        i: (d,) for i, d in enumerate(DIGITS_REUSE_TARGET_DIGITS)
    }
    assert true_matches("imagenet", "cub200") is None


def test_uot_ranks_matching_classes_first_on_raw_pixels() -> None:
    """UOT (paper settings) on raw-pixel class means: the top-5 are exactly the upright 0–4."""
    pair = digits_pair()
    xs = pair.source.train.images.reshape(len(pair.source.train), -1).double().numpy()
    xt = pair.target.train.images.reshape(len(pair.target.train), -1).double().numpy()
    src_means, src_ids = class_means(xs, pair.source.train_targets)
    tgt_means, _ = class_means(xt, pair.target.train_targets)
    import dataclasses

    from ftsweep.methods.uot_selection import UotSelectionConfig

    paper = {f.name: f.default for f in dataclasses.fields(UotSelectionConfig)}  # the paper's settings
    scores = uot_scores(
        src_means, tgt_means, **{k: paper[k] for k in ("eps", "tau1", "tau2", "eps_c")}, cost="cosine"
    )
    top = src_ids[select(scores, len(DIGITS_REUSE_TARGET_DIGITS))]
    assert set(top.tolist()) == set(DIGITS_REUSE_TARGET_DIGITS)


def test_unit_members_hand_case() -> None:
    units = np.array([3, 1, 3, 2, 1, 3, 0])
    np.testing.assert_array_equal(unit_members(units, np.array([3, 0])), [0, 2, 5, 6])
    # subsample 0.5 keeps round(0.5*3)=2 of unit 3 and max(1, round(0.5*1))=1 of unit 0
    kept = unit_members(units, np.array([3, 0]), subsample=0.5, seed=1)
    assert len(kept) == 3 and 6 in kept and set(kept) <= {0, 2, 5, 6}
    np.testing.assert_array_equal(kept, unit_members(units, np.array([0, 3]), subsample=0.5, seed=1))
    with pytest.raises(ValueError, match="subsample"):
        unit_members(units, np.array([3]), subsample=0.0)
