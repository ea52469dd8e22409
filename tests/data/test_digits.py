"""The embedded digits data: real images, fixed test split, static info matching the data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ftsweep.data import DATASETS, build_data, digits_images, load_dataset


def test_images_are_the_sklearn_digits_upsampled() -> None:
    images, targets = digits_images()
    raw = load_digits()
    assert images.shape == (1797, 3, 32, 32) and images.dtype == torch.uint8
    np.testing.assert_array_equal(targets, raw.target)
    # channels identical; the brightest 8x8 pixel (16) maps near 255, blank (0) stays 0
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])
    i = int(np.argmax(raw.images.reshape(1797, -1).max(1)))
    assert images[i].max() >= 250
    blank = np.argwhere(raw.images[0] == 0)[0]
    assert images[0, 0, blank[0] * 4 + 1, blank[1] * 4 + 1] < 128


def test_test_split_is_fixed_stratified_and_disjoint() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert len(a.train) == 1437 and len(a.test) == 360
    assert torch.equal(a.test.images, b.test.images)
    counts = np.bincount(a.test_targets, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20 % of each class
    train_keys = {img.numpy().tobytes() for img in a.train.images}
    # the dataset has a handful of exact duplicate images; none of the test images may be a
    # train image unless its duplicate exists in the raw data
    counts = Counter(img.numpy().tobytes() for img in digits_images()[0])
    dup = {k for k, n in counts.items() if n > 1}
    assert not ({img.numpy().tobytes() for img in a.test.images} & train_keys) - dup


@pytest.mark.parametrize("name", ["digits", "digits_source", "digits_target"])
def test_static_info_matches_the_data(name: str) -> None:
    info, data = DATASETS[name], load_dataset(name)
    assert (info.num_train, info.num_test) == (len(data.train), len(data.test))
    assert info.num_classes == len(np.unique(data.train_targets))
    assert info.offline and not info.hflip and info.image_size == 32


def test_build_data_streams() -> None:
    b = build_data(
        "digits",
        seed=1,
        labels_per_class=3,
        train_views=("simclr", "simclr"),
        unlabeled_views=("weak", "strong"),
    )
    assert len(b.labeled) == 30 and len(b.val) + len(b.labeled) + len(b.unlabeled) == 1437
    (v1, v2), y, idx = b.labeled[0]
    assert v1.shape == v2.shape == (3, 32, 32) and not torch.equal(v1, v2) and y >= 0
    (w, s), y_u, _ = b.unlabeled[0]
    assert y_u == -1 and w.dtype == torch.float32
    x, y, _ = b.test[0]
    assert x.shape == (3, 32, 32) and y == int(b.loaded.test_targets[0])
    ids = set(b.splits.labeled) | set(b.splits.unlabeled) | set(b.splits.val)
    assert len(ids) == 1437


def test_image_size_resizes_every_view_and_keeps_the_registry() -> None:
    from ftsweep.data import get_dataset_info, resolve_info
    from ftsweep.data.batch_views import batch_simclr_view

    b = build_data("digits", seed=0, labels_per_class=2, train_views=("simclr", "weak"), image_size=48)
    assert b.info.image_size == 48 and get_dataset_info("digits").image_size == 32
    (v1, v2), _, _ = b.labeled[0]
    assert v1.shape == v2.shape == (3, 48, 48)
    assert b.val[0][0].shape == b.test[0][0].shape == (3, 48, 48)
    # eval view of a 32-px image at side 48: a plain resize of the whole image
    img = b.loaded.test[0][0]
    expected = torch.nn.functional.interpolate(
        img.float()[None] / 255, size=(48, 48), mode="bilinear", antialias=True, align_corners=False
    )[0]
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (b.info.mean, b.info.std))
    assert torch.allclose(b.test[0][0], (expected - mean) / std, atol=0.02)
    # the batched views (digits pretraining) follow the same side
    views = batch_simclr_view(b.loaded.train.images[:4], resolve_info("digits", 48))
    assert views.shape == (4, 3, 48, 48)
    assert resolve_info("digits", None) is get_dataset_info("digits")
