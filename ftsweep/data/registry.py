"""Dataset registry: names → loaders that return the papers' train/test splits (and image-folder
paths, :mod:`ftsweep.data.folder`, wherever a name is looked up).

A loader returns a :class:`LoadedDataset` whose ``train``/``test`` items are ``(image, label)``
with ``image`` a PIL image or a ``uint8`` tensor of shape (C, H, W). Targets are exposed as
arrays so splits can be computed without decoding any image. Few-shot benchmarks
(``ftsweep.data.fewshot``) also carry a ``novel`` part: images of classes disjoint from the
train/test classes, from which few-shot episodes are drawn.
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
    """The train and test parts of a dataset with their integer targets.

    Attributes:
        train, test: datasets of ``(image, label)``; labels in ``[0, num_classes)``.
        train_targets, test_targets: int arrays with shape (len(train),) and (len(test),).
        class_names: names of the train/test classes, if known.
        novel: few-shot benchmarks only — images of the novel (meta-test) classes, disjoint
            from the train/test classes; labels in ``[0, num_novel_classes)``. None otherwise.
        novel_targets: int array with shape (len(novel),), given exactly when ``novel`` is.
        val: a validation part of its own (an image folder's ``val/``), same classes as train;
            when given, validation is this part instead of a split carved from train.
        val_targets: int array with shape (len(val),), given exactly when ``val`` is.
    """

    train: Dataset
    test: Dataset
    train_targets: np.ndarray
    test_targets: np.ndarray
    class_names: tuple[str, ...] | None = None
    novel: Dataset | None = None
    novel_targets: np.ndarray | None = None
    val: Dataset | None = None
    val_targets: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.train_targets) != len(self.train):  # type: ignore[arg-type]
            raise ValueError(
                f"train has {len(self.train)} items but {len(self.train_targets)} targets"  # type: ignore[arg-type]
            )
        if len(self.test_targets) != len(self.test):  # type: ignore[arg-type]
            raise ValueError(
                f"test has {len(self.test)} items but {len(self.test_targets)} targets"  # type: ignore[arg-type]
            )
        if (self.novel is None) != (self.novel_targets is None):
            raise ValueError("novel and novel_targets must be given together")
        if self.novel is not None and len(self.novel_targets) != len(self.novel):  # type: ignore[arg-type]
            raise ValueError(
                f"novel has {len(self.novel)} items but {len(self.novel_targets)} targets"  # type: ignore[arg-type]
            )
        if (self.val is None) != (self.val_targets is None):
            raise ValueError("val and val_targets must be given together")
        if self.val is not None and len(self.val_targets) != len(self.val):  # type: ignore[arg-type]
            raise ValueError(f"val has {len(self.val)} items but {len(self.val_targets)} targets")  # type: ignore[arg-type]


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset, known without loading it.

    Attributes:
        name: registry key.
        num_classes: number of classes.
        load: ``load(root, download) -> LoadedDataset``.
        image_size: side of the training crop the papers use.
        resize_size: when set, the crop-based training views resize the image to
            ``resize_size`` × ``resize_size`` and take a random ``image_size`` crop of it, and the
            eval view resizes the whole image to ``image_size`` × ``image_size`` (Core-tuning's
            code: 272 → 256); None = the default crops (see ``ftsweep.data.transforms``).
        eval_resize: the eval view of images above 64 px without ``resize_size``: ``shorter``
            (shorter side to ``round(image_size / 0.875)``, then the centre crop) or ``square``
            (the whole image to that square first; ``TrainConfig.eval_resize``).
        num_train: size of the train part (before the validation split), if known.
        num_test: size of the test part, if known.
        mean, std: per-channel normalisation.
        hflip: whether horizontal flips preserve the label (False for digits and SVHN).
        grayscale: the images carry no colour (colour jitter reduces to brightness/contrast).
        offline: True when the data ships with an installed package (no root needed).
        num_novel_classes: few-shot benchmarks only — number of novel classes the loader returns
            as ``LoadedDataset.novel`` (None: the dataset has no novel part).
        num_novel: few-shot benchmarks only — images of the novel part, if known.
        files: paths under ``data_root`` that must exist before the loader can run (checked
            before Ray starts, ``ftsweep.config.checks``); empty = not checked.
        downloadable: torchvision can fetch the dataset (``download: true``).
    """

    name: str
    num_classes: int
    load: Callable[[str, bool], LoadedDataset]
    image_size: int = 224
    resize_size: int | None = None
    eval_resize: str = "shorter"
    num_train: int | None = None
    num_test: int | None = None
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    hflip: bool = True
    grayscale: bool = False
    offline: bool = False
    num_novel_classes: int | None = None
    num_novel: int | None = None
    files: tuple[str, ...] = ()
    downloadable: bool = False
    description: str = field(default="", compare=False)


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add ``info`` to the registry; a duplicate name raises ``KeyError``."""
    if info.name in DATASETS:
        raise KeyError(f"dataset {info.name!r} is already registered")
    DATASETS[info.name] = info
    return info


def get_dataset_info(name: str) -> DatasetInfo:
    """Look up a dataset by name, or scan an image-folder path (``./my_images``; see
    :mod:`ftsweep.data.folder`). An unknown name raises ``KeyError`` listing the known ones; a bad
    folder raises ``ConfigError`` naming the path and the expected layout."""
    if name in DATASETS:
        return DATASETS[name]
    from ftsweep.data.folder import folder_info, is_folder_dataset

    if is_folder_dataset(name):
        return folder_info(name)
    raise KeyError(
        f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))} or an image-folder path (./my_images)"
    )


def exact_labels(name: str) -> bool:
    """Whether the train labels of ``name`` are at hand before a trial loads it — an embedded
    dataset (``offline``) or an image folder (scanned once) —, so that its splits can be drawn
    exactly rather than estimated from ``num_train``."""
    if name in DATASETS:
        return DATASETS[name].offline
    from ftsweep.data.folder import is_folder_dataset

    return is_folder_dataset(name)


def load_dataset(name: str, root: str = "data", download: bool = False) -> LoadedDataset:
    """Load dataset ``name`` from ``root`` (downloading only when ``download`` is True)."""
    return get_dataset_info(name).load(root, download)
