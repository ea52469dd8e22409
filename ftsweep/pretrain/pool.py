"""The stage-1 pool (train part minus validation, labels unused) and its two-view batches.

In-memory uint8 data gets batched views (:func:`ftsweep.data.batch_views.batch_byol_view` /
``batch_simclr_view``, one kernel call per batch, on the training device with ``gpu_augment``);
other data the ``byol1``/``byol2`` (BYOL) or ``simclr`` (MoCo v2) recipes through a
:func:`~ftsweep.engine.make_loader` kept across epochs: per image in its workers, or, with
``gpu_augment``, batched on the device (:mod:`ftsweep.data.gpu_views`) as the fine-tuners do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ftsweep.data import load_dataset_cached, make_splits
from ftsweep.data.batch_views import batch_byol_view, batch_simclr_view
from ftsweep.data.gpu_views import BatchView, DeviceBatches
from ftsweep.data.registry import DatasetInfo
from ftsweep.engine import make_loader, reseed, resolve_num_workers
from ftsweep.pretrain.config import TargetPretrainConfig

__all__ = ["TensorPoolBatches", "ViewPoolBatches", "target_pool"]


def target_pool(cfg: TargetPretrainConfig) -> np.ndarray:
    """Sorted indices of the stage-1 pool in the train part: labeled ∪ unlabeled = train − val."""
    loaded = load_dataset_cached(cfg.dataset, cfg.data_root, False)
    splits = make_splits(
        loaded.train_targets,
        seed=cfg.seed,
        val_fraction=cfg.val_fraction,
        labels_per_class=cfg.labels_per_class,
        num_labels=cfg.num_labels,
    )
    return np.sort(np.concatenate([splits.labeled, splits.unlabeled]))


class TensorPoolBatches:
    """Shuffled full batches of two batched views of an in-memory uint8 pool.

    The order is drawn on the CPU; the views by a generator on ``images``' device (the CPU
    generator of the order when that is the CPU), seeded by the epoch's seed, and returned in
    ``memory_format``."""

    def __init__(
        self,
        images: torch.Tensor,
        info: DatasetInfo,
        objective: str,
        batch_size: int,
        *,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        self.images, self.info, self.objective = images, info, objective
        self.batch_size = min(batch_size, len(images))
        self.memory_format = memory_format

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(self.images), generator=gen)
        dev = self.images.device
        if dev.type != "cpu":
            gen = torch.Generator(device=dev).manual_seed(seed)
            perm = perm.to(dev)
        for i in range(len(self)):
            x = self.images[perm[i * self.batch_size : (i + 1) * self.batch_size]]
            if self.objective == "byol":
                views = (
                    batch_byol_view(x, self.info, solarize_p=0.0, generator=gen),
                    batch_byol_view(x, self.info, solarize_p=0.2, generator=gen),
                )
            else:
                views = (
                    batch_simclr_view(x, self.info, generator=gen),
                    batch_simclr_view(x, self.info, generator=gen),
                )
            yield tuple(v.contiguous(memory_format=self.memory_format) for v in views)  # type: ignore[misc]


class ViewPoolBatches:
    """Shuffled full batches of two view recipes (``byol1``/``byol2`` or ``simclr``) of a pool.

    One :func:`~ftsweep.engine.make_loader` serves every epoch (``num_workers`` workers,
    ``auto`` = the trial's CPUs minus one, kept alive between epochs and re-seeded by each
    epoch's seed; pinned memory on CUDA). With ``batch_view`` (a :class:`BatchView` of the two
    recipes, see :func:`~ftsweep.data.gpu_views.device_view_stream`) the dataset yields prepared
    uint8 images and the views are drawn on ``device``, batched.

    Args:
        dataset: the pool as a :class:`~ftsweep.data.ViewDataset` of the two per-image recipes,
            or its :class:`~ftsweep.data.gpu_views.DeviceViewDataset` with ``batch_view``.
        batch_size: images per batch (full batches only).
        num_workers: DataLoader workers or ``auto``.
        device: where the batches go (their views are drawn there with ``batch_view``).
        batch_view: the two views, drawn on ``device``; None = the dataset's per-image views.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        num_workers: int | str = 0,
        *,
        device: torch.device | str = "cpu",
        batch_view: BatchView | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = min(batch_size, len(dataset))
        self.num_workers = resolve_num_workers(num_workers)
        self.device = torch.device(device)
        self.batch_view = batch_view
        self._loader: DataLoader | None = None

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def loader(self, seed: int) -> DataLoader:
        """The pool's loader, re-seeded with ``seed``: the batches of a fresh
        ``make_loader(dataset, seed=seed)``."""
        if self._loader is None:
            self._loader = make_loader(
                self.dataset,
                batch_size=self.batch_size,
                shuffle=True,
                seed=seed,
                num_workers=self.num_workers,
                drop_last=True,
                pin_memory=self.device.type == "cuda",
                persistent_workers=self.num_workers > 0,
            )
        return reseed(self._loader, seed)

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        torch.manual_seed(seed)
        batches: Iterable = self.loader(seed)
        if self.batch_view is not None:
            stream = getattr(self.dataset, "stream", "pool")
            batches = DeviceBatches(batches, {stream: self.batch_view}, self.device)
        for (x1, x2), _, _ in batches:
            yield x1, x2
