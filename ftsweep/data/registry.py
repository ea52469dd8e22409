"""Dataset registry: names → loaders that return the papers' train/test splits.

A loader returns a :class:`LoadedDataset` whose ``train``/``test`` items are ``(image, label)``
with ``image`` a PIL image or a ``uint8`` tensor of shape (C, H, W). Targets are exposed as
arrays so splits can be computed without decoding any image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import Dataset

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "LoadedDataset",
    "get_dataset_info",
    "load_dataset",
    "register_dataset",
]


@dataclass(frozen=True)
class LoadedDataset:
    """The train and test parts of a dataset with their integer targets."""

    train: Dataset
    test: Dataset
    train_targets: np.ndarray
    test_targets: np.ndarray
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.train_targets) != len(self.train):  # type: ignore[arg-type]
            raise ValueError(
                f"train has {len(self.train)} items but {len(self.train_targets)} targets"  # type: ignore[arg-type]
            )
        if len(self.test_targets) != len(self.test):  # type: ignore[arg-type]
            raise ValueError(
                f"test has {len(self.test)} items but {len(self.test_targets)} targets"  # type: ignore[arg-type]
            )


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset, known without loading it.

    Attributes:
        name: registry key.
        num_classes: number of classes.
        load: ``load(root, download) -> LoadedDataset``.
        image_size: side of the training crop the papers use.
        num_train: size of the train part (before the validation split), if known.
        num_test: size of the test part, if known.
        mean, std: per-channel normalisation.
        hflip: whether horizontal flips preserve the label (False for digits and SVHN).
        grayscale: the images carry no colour (colour jitter reduces to brightness/contrast).
        offline: True when the data ships with an installed package (no root needed).
    """

    name: str
    num_classes: int
    load: Callable[[str, bool], LoadedDataset]
    image_size: int = 224
    num_train: int | None = None
    num_test: int | None = None
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    hflip: bool = True
    grayscale: bool = False
    offline: bool = False
    description: str = field(default="", compare=False)


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add ``info`` to the registry; a duplicate name raises ``KeyError``."""
    if info.name in DATASETS:
        raise KeyError(f"dataset {info.name!r} is already registered")
    DATASETS[info.name] = info
    return info


def get_dataset_info(name: str) -> DatasetInfo:
    """Look up a dataset by name; an unknown name raises ``KeyError`` listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def load_dataset(name: str, root: str = "data", download: bool = False) -> LoadedDataset:
    """Load dataset ``name`` from ``root`` (downloading only when ``download`` is True)."""
    return get_dataset_info(name).load(root, download)
