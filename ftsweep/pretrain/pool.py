"""The stage-1 pool (train part minus validation, labels unused) and its two-view batches.

In-memory uint8 data gets batched views (:func:`ftsweep.data.batch_views.batch_byol_view` /
``batch_simclr_view``, one kernel call per batch); other data the per-sample ``byol1``/``byol2``
(BYOL) or ``simclr`` (MoCo v2) recipes through a DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ftsweep.data import ViewDataset, load_dataset_cached, make_splits
from ftsweep.data.batch_views import batch_byol_view, batch_simclr_view
from ftsweep.data.registry import DatasetInfo
from ftsweep.engine import make_loader
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
    """Shuffled full batches of two batched views of an in-memory uint8 pool."""

    def __init__(self, images: torch.Tensor, info: DatasetInfo, objective: str, batch_size: int) -> None:
        self.images, self.info, self.objective = images, info, objective
        self.batch_size = min(batch_size, len(images))

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(self.images), generator=gen)
        for i in range(len(self)):
            x = self.images[perm[i * self.batch_size : (i + 1) * self.batch_size]]
            if self.objective == "byol":
                yield (
                    batch_byol_view(x, self.info, solarize_p=0.0, generator=gen),
                    batch_byol_view(x, self.info, solarize_p=0.2, generator=gen),
                )
            else:
                yield (
                    batch_simclr_view(x, self.info, generator=gen),
                    batch_simclr_view(x, self.info, generator=gen),
                )


class ViewPoolBatches:
    """Shuffled full batches of two per-sample view recipes (``byol1``/``byol2`` or ``simclr``)."""

    def __init__(self, dataset: ViewDataset, batch_size: int, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.batch_size = min(batch_size, len(dataset))
        self.num_workers = num_workers

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def epoch(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        torch.manual_seed(seed)
        loader = make_loader(
            self.dataset, batch_size=self.batch_size, shuffle=True, seed=seed, drop_last=True
        )
        for (x1, x2), _, _ in loader:
            yield x1, x2
