"""Few-shot benchmarks: base classes to fine-tune on, novel classes to draw episodes from.

Each benchmark partitions its classes into base (meta-train), validation (meta-val) and novel
(meta-test) classes, following the standard split definitions:

=============== ================================ ======================= =====================
name            split (base / val / novel)       source of the images    on disk, under root
=============== ================================ ======================= =====================
cifar_fs        64 / 16 / 20 CIFAR-100 classes   CIFAR-100 python pickles ``cifar-100-python/``
                (Bertinetto et al., ICLR 2019)
fc100           12 / 4 / 4 CIFAR-100 superclasses CIFAR-100 python pickles ``cifar-100-python/``
                = 60 / 20 / 20 classes (Oreshkin
                et al., NeurIPS 2018)
mini_imagenet   64 / 16 / 20 ImageNet classes     MetaOptNet/RFS pickles  ``mini_imagenet/``
                (Ravi & Larochelle, ICLR 2017)
tiered_imagenet 351 / 97 / 160 ImageNet classes   MetaOptNet/RFS npz+pkl  ``tiered_imagenet/``
                (Ren et al., ICLR 2018)
=============== ================================ ======================= =====================

What a loader returns (:class:`~ftsweep.data.registry.LoadedDataset`):

- ``train`` / ``test``: images of the *base* classes only, labels ``0 … num_base − 1`` in the
  order of ``class_names``. ftsweep fine-tunes on ``train`` (with its usual seeded validation
  split carved out of it for model selection) and reports ``test/acc`` on ``test``.
- ``novel`` / ``novel_targets``: every image of the *novel* classes, labels ``0 … 19`` (159 for
  tieredImageNet). SCHaNe's few-shot episodes (Table 1) are drawn from these images, never
  from a class seen in fine-tuning.
- The validation classes are not loaded: ftsweep selects models on the seeded validation
  split of base images (docs/deviations.md).

Where the base images come from:

- CIFAR-FS and FC100 are built from CIFAR-100 itself (the python version torchvision reads and
  can download) with the split lists below, which are fixed facts of the benchmarks (the same
  lists torchmeta ships; MetaOptNet/RFS distribute the result as ``CIFAR_FS_*.pickle`` /
  ``FC100_*.pickle``, whose images are exactly CIFAR-100's 600 per class). Base ``train`` =
  CIFAR-100's 500 train images per base class, base ``test`` = its 100 test images per base
  class; ``novel`` = all 600 images of each novel class.
- miniImageNet and tieredImageNet are read from the files MetaOptNet (Lee et al., CVPR 2019)
  and RFS (Tian et al., ECCV 2020) load — the most widely used distribution of the
  benchmarks' 84×84 images. They contain no held-out images of the base classes, so
  :data:`FEWSHOT_BASE_TEST_PER_CLASS` images per base class are drawn once by
  :data:`FEWSHOT_SPLIT_SEED` as the base ``test`` part (independent of any trial seed).

A missing dataset raises :class:`FileNotFoundError` naming the expected files and layout.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset
from torchvision import datasets as tvd

from ftsweep.data.catalog import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    _build,
    _require,
    per_class_train_split,
)
from ftsweep.data.registry import DatasetInfo, LoadedDataset, register_dataset

__all__ = [
    "CIFAR100_SUPERCLASSES",
    "CIFAR_FS_HELD_OUT",
    "FC100_SUPERCLASS_SPLIT",
    "FEWSHOT_BASE_TEST_PER_CLASS",
    "FEWSHOT_SPLIT_SEED",
    "HWCImageArray",
    "RelabeledSubset",
    "cifar_fs_classes",
    "fc100_classes",
]

FEWSHOT_SPLIT_SEED = 0
#: base-class images held out as the ``test`` part of miniImageNet / tieredImageNet (as CIFAR's 100)
FEWSHOT_BASE_TEST_PER_CLASS = 100

#: CIFAR-100's 20 superclasses and their 5 classes each (names as in CIFAR-100's ``meta`` file)
CIFAR100_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

#: CIFAR-FS (Bertinetto et al. 2019, ``splits/bertinetto/{val,test}.txt``): the 16 validation
#: and 20 novel classes; the other 64 CIFAR-100 classes are the base classes.
CIFAR_FS_HELD_OUT: dict[str, tuple[str, ...]] = {
    "val": (
        "beaver", "otter", "flatfish", "shark", "lamp", "television", "beetle", "butterfly",
        "sea", "camel", "cattle", "crab", "crocodile", "maple_tree", "motorcycle", "tractor",
    ),
    "test": (
        "whale", "poppy", "rose", "sweet_pepper", "telephone", "bed", "table", "wardrobe",
        "leopard", "plain", "chimpanzee", "fox", "snail", "worm", "baby", "man", "woman",
        "bicycle", "pickup_truck", "rocket",
    ),
}  # fmt: skip

#: FC100 (Oreshkin et al. 2018): superclasses of the base / validation / novel classes
FC100_SUPERCLASS_SPLIT: dict[str, tuple[str, ...]] = {
    "train": (
        "fish", "flowers", "food_containers", "fruit_and_vegetables",
        "household_electrical_devices", "household_furniture", "large_man-made_outdoor_things",
        "large_natural_outdoor_scenes", "reptiles", "trees", "vehicles_1", "vehicles_2",
    ),
    "val": (
        "large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates",
        "small_mammals",
    ),
    "test": ("aquatic_mammals", "insects", "medium_mammals", "people"),
}  # fmt: skip


def _cifar100_class_names() -> list[str]:
    return sorted(name for names in CIFAR100_SUPERCLASSES.values() for name in names)


def cifar_fs_classes() -> dict[str, tuple[str, ...]]:
    """CIFAR-FS class names per split (``train`` = base, ``val``, ``test`` = novel), each sorted."""
    held = {c for names in CIFAR_FS_HELD_OUT.values() for c in names}
    return {
        "train": tuple(c for c in _cifar100_class_names() if c not in held),
        "val": tuple(sorted(CIFAR_FS_HELD_OUT["val"])),
        "test": tuple(sorted(CIFAR_FS_HELD_OUT["test"])),
    }


def fc100_classes() -> dict[str, tuple[str, ...]]:
    """FC100 class names per split: the classes of the split's superclasses, each sorted."""
    return {
        split: tuple(sorted(c for s in supers for c in CIFAR100_SUPERCLASSES[s]))
        for split, supers in FC100_SUPERCLASS_SPLIT.items()
    }


class HWCImageArray(Dataset):
    """``(PIL image, label)`` pairs from a uint8 array of shape (N, H, W, 3)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        assert images.dtype == np.uint8 and images.ndim == 4, (
            f"images must be uint8 (N, H, W, 3) but found {images.dtype} {images.shape}"
        )
        assert len(images) == len(labels), f"{len(images)} images but {len(labels)} labels"
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), int(self.labels[index])


class RelabeledSubset(Dataset):
    """Items ``(image, targets[i])`` for the images of ``base`` at ``indices[i]``.

    Args:
        base: dataset of ``(image, original_label)``.
        indices: int array with shape (M,), positions in ``base``.
        targets: int array with shape (M,), the new labels.
    """

    def __init__(self, base: Dataset, indices: np.ndarray, targets: np.ndarray) -> None:
        assert len(indices) == len(targets), f"{len(indices)} indices but {len(targets)} targets"
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[object, int]:
        img, _ = self.base[int(self.indices[i])]
        return img, int(self.targets[i])


def _select(base: Dataset, targets: np.ndarray, classes: Sequence[int]) -> RelabeledSubset:
    """Images of ``base`` whose label is in ``classes``, relabeled to their position there."""
    code = {int(c): k for k, c in enumerate(classes)}
    idx = np.flatnonzero(np.isin(targets, list(code)))
    return RelabeledSubset(base, idx, np.array([code[int(t)] for t in targets[idx]], dtype=np.int64))


# --------------------------------------------------------------------------- CIFAR-FS, FC100

_CIFAR100_LAYOUT = "cifar-100-python/{train,test,meta} (CIFAR-100 python version)"


def _load_cifar100_split(
    name: str, classes: Mapping[str, Sequence[str]], root: str, download: bool
) -> LoadedDataset:
    """Base ``train``/``test`` and ``novel`` parts of CIFAR-100 for the split ``classes``."""
    folder = "cifar-100-python"
    _require(name, root, folder, download, downloadable=True, layout=_CIFAR100_LAYOUT)
    parts = {
        s: _build(
            name, root, folder, True, lambda s=s: tvd.CIFAR100(root, train=s == "train", download=download)
        )
        for s in ("train", "test")
    }
    names = list(parts["train"].classes)
    missing = sorted({c for cs in classes.values() for c in cs} - set(names))
    if missing:
        raise ValueError(
            f"dataset {name!r}: CIFAR-100's meta file under {os.path.join(root, folder)!r} lacks "
            f"the split's classes {missing[:5]} (is it the CIFAR-100 python version?)"
        )
    base = [names.index(c) for c in classes["train"]]
    novel = [names.index(c) for c in classes["test"]]
    targets = {s: np.asarray(d.targets, dtype=np.int64) for s, d in parts.items()}
    train, test = (_select(parts[s], targets[s], base) for s in ("train", "test"))
    novel_parts = [_select(parts[s], targets[s], novel) for s in ("train", "test")]
    return LoadedDataset(
        train=train,
        test=test,
        train_targets=train.targets,
        test_targets=test.targets,
        class_names=tuple(classes["train"]),
        novel=ConcatDataset(novel_parts),
        novel_targets=np.concatenate([p.targets for p in novel_parts]),
    )


def load_cifar_fs(root: str, download: bool) -> LoadedDataset:
    """CIFAR-FS from ``root/cifar-100-python/`` (see the module docstring)."""
    return _load_cifar100_split("cifar_fs", cifar_fs_classes(), root, download)


def load_fc100(root: str, download: bool) -> LoadedDataset:
    """FC100 from ``root/cifar-100-python/`` (see the module docstring)."""
    return _load_cifar100_split("fc100", fc100_classes(), root, download)


# --------------------------------------------------------------------------- mini/tieredImageNet


def _unpickle(path: str) -> dict:
    """A MetaOptNet/RFS pickle (written by Python 2: numpy arrays need ``latin1``)."""
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _from_arrays(
    name: str,
    base: tuple[np.ndarray, np.ndarray],
    novel: tuple[np.ndarray, np.ndarray],
    base_names: Mapping[int, str] | None = None,
) -> LoadedDataset:
    """Base ``train``/``test`` (a fixed per-class hold-out) and ``novel`` from image arrays.

    Args:
        base, novel: ``(images, labels)``, uint8 (N, H, W, 3) and int (N,); labels as stored
            (any integers), remapped to ``0 … K − 1`` in sorted order.
        base_names: stored label → class name, for ``class_names``.
    """
    (x_base, y_base), (x_novel, y_novel) = base, novel
    base_classes, base_t = np.unique(np.asarray(y_base), return_inverse=True)
    _, novel_t = np.unique(np.asarray(y_novel), return_inverse=True)
    try:
        test_idx, train_idx = per_class_train_split(base_t, FEWSHOT_BASE_TEST_PER_CLASS, FEWSHOT_SPLIT_SEED)
    except ValueError as err:
        raise ValueError(
            f"dataset {name!r}: every base class needs more than {FEWSHOT_BASE_TEST_PER_CLASS} images "
            f"(held out as the test part): {err}"
        ) from err
    images = HWCImageArray(x_base, base_t)
    names = None
    if base_names is not None:
        names = tuple(base_names[int(c)] for c in base_classes)
    return LoadedDataset(
        train=RelabeledSubset(images, train_idx, base_t[train_idx]),
        test=RelabeledSubset(images, test_idx, base_t[test_idx]),
        train_targets=base_t[train_idx].astype(np.int64),
        test_targets=base_t[test_idx].astype(np.int64),
        class_names=names,
        novel=HWCImageArray(x_novel, novel_t),
        novel_targets=novel_t.astype(np.int64),
    )


_MINI_FILES = {
    "base": "miniImageNet_category_split_train_phase_train.pickle",
    "novel": "miniImageNet_category_split_test.pickle",
}
_MINI_LAYOUT = (
    "mini_imagenet/{" + ", ".join(_MINI_FILES.values()) + "} — the MetaOptNet/RFS pickles, each a "
    "dict with 'data' uint8 (N, 84, 84, 3), 'labels' and 'catname2label'"
)


def load_mini_imagenet(root: str, download: bool) -> LoadedDataset:
    """miniImageNet from the MetaOptNet/RFS pickles under ``root/mini_imagenet/``.

    Expected files: ``miniImageNet_category_split_train_phase_train.pickle`` (the 64 base
    classes × 600 images) and ``miniImageNet_category_split_test.pickle`` (the 20 novel classes
    × 600), each a pickled dict ``{"data": uint8 (N, 84, 84, 3), "labels": [int] * N,
    "catname2label": {wnid: int}}``. Base and novel classes must be disjoint (checked on the
    wnids). Cannot be downloaded automatically.
    """
    del download
    for f in _MINI_FILES.values():
        _require(
            "mini_imagenet",
            root,
            os.path.join("mini_imagenet", f),
            False,
            downloadable=False,
            layout=_MINI_LAYOUT,
        )
    base, novel = (_unpickle(os.path.join(root, "mini_imagenet", f)) for f in _MINI_FILES.values())
    names = None
    if "catname2label" in base:
        names = {int(v): str(k) for k, v in base["catname2label"].items()}
        novel_names = {str(k) for k in novel.get("catname2label", {})}
        shared = sorted(set(names.values()) & novel_names)
        if shared:
            raise ValueError(f"dataset 'mini_imagenet': base and novel files share classes {shared[:5]}")
    return _from_arrays(
        "mini_imagenet",
        (np.asarray(base["data"]), np.asarray(base["labels"])),
        (np.asarray(novel["data"]), np.asarray(novel["labels"])),
        names,
    )


_TIERED_LAYOUT = (
    "tiered_imagenet/{train,test}_images.npz ('images' uint8 (N, 84, 84, 3)) and "
    "{train,test}_labels.pkl ('labels') — the MetaOptNet/RFS files"
)


def load_tiered_imagenet(root: str, download: bool) -> LoadedDataset:
    """tieredImageNet from the MetaOptNet/RFS files under ``root/tiered_imagenet/``.

    Expected files: ``train_images.npz`` / ``train_labels.pkl`` (the 351 base classes,
    448,695 images) and ``test_images.npz`` / ``test_labels.pkl`` (the 160 novel classes,
    206,209 images); each ``.npz`` holds ``images`` uint8 (N, 84, 84, 3), each ``.pkl`` a dict
    with ``labels`` (N ints). Cannot be downloaded automatically.
    """
    del download
    parts = {}
    for split in ("train", "test"):
        for suffix in ("images.npz", "labels.pkl"):
            rel = os.path.join("tiered_imagenet", f"{split}_{suffix}")
            _require("tiered_imagenet", root, rel, False, downloadable=False, layout=_TIERED_LAYOUT)
        base = os.path.join(root, "tiered_imagenet", split)
        with np.load(base + "_images.npz") as npz:
            images = npz["images"]
        parts[split] = (images, np.asarray(_unpickle(base + "_labels.pkl")["labels"]))
    return _from_arrays("tiered_imagenet", parts["train"], parts["test"])


# --------------------------------------------------------------------------- registry

register_dataset(
    DatasetInfo(
        name="cifar_fs",
        num_classes=64,
        load=load_cifar_fs,
        image_size=32,
        num_train=64 * 500,
        num_test=64 * 100,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        num_novel_classes=20,
        num_novel=20 * 600,
        description="CIFAR-FS (Bertinetto et al.): 64 base classes of CIFAR-100; 20 novel for episodes",
    )
)
register_dataset(
    DatasetInfo(
        name="fc100",
        num_classes=60,
        load=load_fc100,
        image_size=32,
        num_train=60 * 500,
        num_test=60 * 100,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        num_novel_classes=20,
        num_novel=20 * 600,
        description="FC100 (Oreshkin et al.): 12 base superclasses of CIFAR-100; 4 novel for episodes",
    )
)
register_dataset(
    DatasetInfo(
        name="mini_imagenet",
        num_classes=64,
        load=load_mini_imagenet,
        num_train=64 * (600 - FEWSHOT_BASE_TEST_PER_CLASS),
        num_test=64 * FEWSHOT_BASE_TEST_PER_CLASS,
        num_novel_classes=20,
        num_novel=20 * 600,
        description="miniImageNet (Ravi & Larochelle split): 64 base classes; 20 novel for episodes",
    )
)
register_dataset(
    DatasetInfo(
        name="tiered_imagenet",
        num_classes=351,
        load=load_tiered_imagenet,
        num_train=448_695 - 351 * FEWSHOT_BASE_TEST_PER_CLASS,
        num_test=351 * FEWSHOT_BASE_TEST_PER_CLASS,
        num_novel_classes=160,
        num_novel=206_209,
        description="tieredImageNet (Ren et al.): 351 base classes; 160 novel for episodes",
    )
)
