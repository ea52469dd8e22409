"""The stage-1 pool, the batched BYOL view and the per-sample two-view batches."""

from __future__ import annotations

import numpy as np
import torch

from ftsweep.data import get_dataset_info
from ftsweep.data.batch_views import batch_byol_view, batch_simclr_view
from ftsweep.pretrain.pool import ViewPoolBatches, target_pool


def test_pool_is_train_minus_validation_whatever_the_label_budget(tiny):
    base = target_pool(tiny())
    for extra in ({"labels_per_class": 2}, {"num_labels": 50}):
        assert np.array_equal(target_pool(tiny(**extra)), base)
    from ftsweep.data import load_dataset_cached, make_splits

    loaded = load_dataset_cached("digits", "data", False)
    val = make_splits(loaded.train_targets, seed=0, val_fraction=0.1).val
    assert len(np.intersect1d(base, val)) == 0
    assert len(base) + len(val) == len(loaded.train)
    assert not np.array_equal(target_pool(tiny(seed=1)), base)


def test_batched_byol_view_solarises_with_probability_one_and_matches_simclr_view_without():
    info = get_dataset_info("digits")
    imgs = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    plain = batch_byol_view(imgs, info, solarize_p=0.0, generator=torch.Generator().manual_seed(3))
    ref = batch_simclr_view(imgs, info, generator=torch.Generator().manual_seed(3))
    assert torch.equal(plain, ref)
    sol = batch_byol_view(imgs, info, solarize_p=1.0, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    raw_ref, raw_sol = ref * std + mean, sol * std + mean
    expected = torch.where(raw_ref >= 0.5, 1 - raw_ref, raw_ref)
    torch.testing.assert_close(raw_sol, expected, atol=1e-5, rtol=0)


def test_per_sample_view_batches_are_full_deterministic_and_differ_between_views():
    from ftsweep.data import ViewDataset, build_views, load_dataset_cached

    info = get_dataset_info("digits")
    loaded = load_dataset_cached("digits", "data", False)
    ds = ViewDataset(loaded.train, np.arange(21), build_views(info, ["byol1", "byol2"]))
    batches = ViewPoolBatches(ds, batch_size=8)
    assert len(batches) == 2
    first = list(batches.epoch(5))
    again = list(batches.epoch(5))
    assert [x1.shape for x1, _ in first] == [torch.Size([8, 3, 32, 32])] * 2
    for (a1, a2), (b1, b2) in zip(first, again, strict=True):
        assert torch.equal(a1, b1) and torch.equal(a2, b2)
        assert not torch.equal(a1, a2)
    assert not torch.equal(first[0][0], next(iter(batches.epoch(6)))[0])


def test_per_sample_batches_use_persistent_workers_and_do_not_depend_on_them():
    from ftsweep.data import ViewDataset, build_views, load_dataset_cached

    info = get_dataset_info("digits")
    ds = ViewDataset(
        load_dataset_cached("digits", "data", False).train,
        np.arange(20),
        build_views(info, ["byol1", "byol2"]),
    )
    alone, workers = ViewPoolBatches(ds, batch_size=8), ViewPoolBatches(ds, batch_size=8, num_workers=2)
    for seed in (5, 6, 5):
        for (a1, a2), (b1, b2) in zip(alone.epoch(seed), workers.epoch(seed), strict=True):
            assert torch.equal(a1, b1) and torch.equal(a2, b2)
    loader = workers.loader(5)
    assert loader.num_workers == 2 and loader.persistent_workers and loader is workers.loader(6)


def test_batched_device_views_of_the_pool_are_full_seeded_and_two_different_views():
    from ftsweep.data import ViewDataset, build_views, load_dataset_cached
    from ftsweep.data.gpu_views import DeviceViewDataset, device_view_stream, use_device_views

    assert (
        use_device_views("auto", "cuda")
        and not use_device_views("auto", "cpu")
        and use_device_views(True, "cpu")
    )
    info = get_dataset_info("digits")
    pool = ViewDataset(
        load_dataset_cached("digits", "data", False).train,
        np.arange(20),
        build_views(info, ["byol1", "byol2"]),
    )
    ds, view = device_view_stream(pool, info, ["byol1", "byol2"], "pool")
    assert isinstance(ds, DeviceViewDataset) and ds[0][0].dtype == torch.uint8, (
        "workers only prepare uint8 images"
    )
    batches = ViewPoolBatches(ds, batch_size=8, batch_view=view)
    first, again = list(batches.epoch(5)), list(batches.epoch(5))
    assert len(first) == 2 and all(x1.shape == x2.shape == (8, 3, 32, 32) for x1, x2 in first)
    for (a1, a2), (b1, b2) in zip(first, again, strict=True):
        assert torch.equal(a1, b1) and torch.equal(a2, b2) and not torch.equal(a1, a2)
    assert not torch.equal(first[0][0], next(iter(batches.epoch(6)))[0])
