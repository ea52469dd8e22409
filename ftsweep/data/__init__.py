"""Datasets, splits and views.

``build_data`` turns a dataset name and the split options every sweep needs into a
:class:`DataBundle` of view-transformed datasets whose items are ``(x, y, index)``: ``x`` a tensor
or a tuple of tensors (multi-view), ``y`` the label (``-1`` on the unlabeled stream), ``index``
the position in the train/test part (stable ids for caches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from torch.utils.data import Dataset

from ftsweep.data import catalog as _catalog  # noqa: F401  (registers the real datasets)
from ftsweep.data import fewshot as _fewshot  # noqa: F401  (registers the few-shot benchmarks)
from ftsweep.data import reuse as _reuse  # noqa: F401  (registers digits_source / digits_target)
from ftsweep.data.digits import DIGITS, TensorImageDataset, digits_images
from ftsweep.data.folder import (
    DATASET_FIELDS,
    ImageFiles,
    folder_info,
    is_folder_dataset,
    unreadable_images,
    validate_dataset,
)
from ftsweep.data.registry import (
    DATASETS,
    DatasetInfo,
    LoadedDataset,
    exact_labels,
    get_dataset_info,
    load_dataset,
    register_dataset,
)
from ftsweep.data.splits import SplitError, Splits, long_tail_counts, make_splits
from ftsweep.data.transforms import VIEWS, Cutout, MultiView, build_view, build_views

__all__ = [
    "DATASET_FIELDS",
    "DATASETS",
    "DIGITS",
    "VIEWS",
    "Cutout",
    "DataBundle",
    "DatasetInfo",
    "ImageFiles",
    "LoadedDataset",
    "MultiView",
    "SplitError",
    "Splits",
    "TensorImageDataset",
    "ViewDataset",
    "build_data",
    "build_view",
    "build_views",
    "digits_images",
    "exact_labels",
    "folder_info",
    "get_dataset_info",
    "is_folder_dataset",
    "load_dataset",
    "load_dataset_cached",
    "long_tail_counts",
    "make_splits",
    "register_dataset",
    "resolve_info",
    "unreadable_images",
    "validate_dataset",
]


class ViewDataset(Dataset):
    """A subset of ``base`` seen through ``transform``; items are ``(x, y, index)``.

    Args:
        base: dataset of ``(image, label)``.
        indices: int array with shape (M,), positions in ``base``.
        transform: maps an image to a tensor or a tuple of tensors.
        hide_labels: return ``-1`` instead of the label (unlabeled stream).
    """

    def __init__(
        self,
        base: Dataset,
        indices: np.ndarray,
        transform: Callable,
        *,
        hide_labels: bool = False,
    ) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.hide_labels = hide_labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[object, int, int]:
        index = int(self.indices[i])
        img, label = self.base[index]
        return self.transform(img), (-1 if self.hide_labels else int(label)), index


@dataclass(frozen=True)
class DataBundle:
    """Everything a trial trains and evaluates on.

    Attributes:
        labeled: labeled train stream (train views).
        unlabeled: unlabeled stream (``unlabeled_views``), or None without a label budget.
        val: validation split of the train part (eval view) — model selection only.
        test: the test part (eval view) — reported for the selected epoch only.
        train_eval: labeled train images with the eval view (feature metrics).
        novel: few-shot benchmarks only — the novel classes' images (eval view), disjoint from
            every class trained on; None for other datasets.
    """

    info: DatasetInfo
    loaded: LoadedDataset
    splits: Splits
    labeled: ViewDataset
    unlabeled: ViewDataset | None
    val: ViewDataset
    test: ViewDataset
    train_eval: ViewDataset
    novel: ViewDataset | None = None

    @property
    def num_classes(self) -> int:
        return self.info.num_classes


@lru_cache(maxsize=4)
def load_dataset_cached(name: str, root: str, download: bool) -> LoadedDataset:
    """``load_dataset`` memoised per process, so trials reusing an actor load once."""
    return load_dataset(name, root, download)


def resolve_info(
    dataset: str,
    image_size: int | None = None,
    resize_size: int | None = None,
    eval_resize: str | None = None,
) -> DatasetInfo:
    """The registry's facts about ``dataset``, with the training crop side replaced by
    ``image_size`` when given (e.g. 32-px CIFAR up-sampled to a ViT's 224, as the papers do),
    the resize-then-crop side set to ``resize_size`` when given (``DatasetInfo.resize_size``) and
    the eval view's resize to ``eval_resize`` when given (``DatasetInfo.eval_resize``)."""
    info = get_dataset_info(dataset)
    if eval_resize is not None and eval_resize != info.eval_resize:
        info = replace(info, eval_resize=eval_resize)
    if image_size is not None and image_size != info.image_size:
        info = replace(info, image_size=image_size)
    if resize_size is not None and resize_size != info.resize_size:
        if resize_size < info.image_size:
            raise ValueError(f"resize_size {resize_size} is smaller than the crop side {info.image_size}")
        info = replace(info, resize_size=resize_size)
    return info


def build_data(
    dataset: str,
    *,
    seed: int,
    root: str = "data",
    download: bool = False,
    val_fraction: float = 0.1,
    labels_per_class: int | None = None,
    num_labels: int | None = None,
    subsample: float | None = None,
    long_tail_ratio: float | None = None,
    train_views: str | Sequence[str] = "standard",
    unlabeled_views: str | Sequence[str] | None = None,
    image_size: int | None = None,
    resize_size: int | None = None,
    eval_resize: str | None = None,
) -> DataBundle:
    """Load ``dataset``, split its train part by ``seed`` and attach the view pipelines
    (crops of side ``image_size``, default the dataset's own, of the image resized to
    ``resize_size`` when given, evaluated as ``eval_resize`` says; see :func:`resolve_info`).

    A dataset with a validation part of its own (an image folder's ``val/``) validates on it and
    carves nothing from train (``val_fraction`` is then unused; ``DataBundle.val`` items index
    that part)."""
    info = resolve_info(dataset, image_size, resize_size, eval_resize)
    loaded = load_dataset_cached(dataset, root, download)
    splits = make_splits(
        loaded.train_targets,
        seed=seed,
        val_fraction=0.0 if loaded.val is not None else val_fraction,
        labels_per_class=labels_per_class,
        num_labels=num_labels,
        subsample=subsample,
        long_tail_ratio=long_tail_ratio,
    )
    ev = build_view(info, "eval")
    novel = None
    if loaded.novel is not None:
        novel = ViewDataset(loaded.novel, np.arange(len(loaded.novel)), ev)
    unlabeled = None
    if len(splits.unlabeled):
        unlabeled = ViewDataset(
            loaded.train,
            splits.unlabeled,
            build_views(info, unlabeled_views or train_views),
            hide_labels=True,
        )
    return DataBundle(
        info=info,
        loaded=loaded,
        splits=splits,
        labeled=ViewDataset(loaded.train, splits.labeled, build_views(info, train_views)),
        unlabeled=unlabeled,
        val=(
            ViewDataset(loaded.train, splits.val, ev)
            if loaded.val is None
            else ViewDataset(loaded.val, np.arange(len(loaded.val)), ev)
        ),
        test=ViewDataset(loaded.test, np.arange(len(loaded.test)), ev),
        train_eval=ViewDataset(loaded.train, splits.labeled, ev),
        novel=novel,
    )
