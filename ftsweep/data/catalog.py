"""Registry entries for the papers' real datasets (torchvision classes or ImageFolder trees).

Every loader reads its targets from the dataset's index (``.targets``, ``._labels``, ``.labels``,
``.y``, ``._samples``) without decoding a single image, so label budgets and splits are computed
before any image is touched. ``num_train``/``num_test`` are the sizes of the full datasets'
parts below (checked against the papers' statistics tables), so a label budget can be validated
before anything is downloaded.

=========== ==== =================== ================= ===================================
name        cls  train part (size)   test part (size)  on disk, under ``root``
=========== ==== =================== ================= ===================================
cifar10     10   train (50,000)      test (10,000)     ``cifar-10-batches-py/``
cifar100    100  train (50,000)      test (10,000)     ``cifar-100-python/``
svhn        10   train (73,257)      test (26,032)     ``svhn/{train,test}_32x32.mat``
dtd         47   train1+val1 (3,760) test1 (1,880)     ``dtd/dtd/{images,labels}/``
flowers102  102  train+val (2,040)   test (6,149)      ``flowers-102/``
pets        37   trainval (3,680)    test (3,669)      ``oxford-iiit-pet/``
cars        196  train (8,144)       test (8,041)      ``stanford_cars/``
aircraft    100  trainval (6,667)    test (3,333)      ``fgvc-aircraft-2013b/``
caltech101  101  30/class (3,030)    the rest (5,647)  ``caltech101/101_ObjectCategories/``
caltech256  257  60/class (15,420)   the rest (15,187) ``caltech256/256_ObjectCategories/``
cub200      200  train (5,994)       test (5,794)      ``cub200/{train,test}/<class>/``
dogs        120  train (12,000)      test (8,580)      ``dogs/{train,test}/<class>/``
sun397      397  train (19,850)      test (19,850)     ``sun397/{train,test}/<class>/``
imagenet20  20   train (18,494)      val (7,854)       ``imagenet20/{train,val}/<wnid>/``
imagenet    1000 train (1,281,167)   val (50,000)      ``imagenet/{train,val}/<wnid>/``
inat2017    5089 train (579,184)     val (95,986)      ``inat2017/{2017/, train2017.json,
                                                       val2017.json}``
places365   365  train-std (1,803,460) val (36,500)    ``places365/`` (torchvision layout,
                                                       256×256 "small" images)
=========== ==== =================== ================= ===================================

Split choices:

- Core-tuning/COIN (Table 1 of Core-tuning's appendix) train on train+val and test on the test
  part for DTD (3,760/1,880, partition 1 as in the UOT paper), Aircraft (6,667/3,333, variant
  level) and Pets (3,680/3,669; Core-tuning's "3,369" is a typo for the official 3,669 the
  UOT paper quotes); Cars and CUB have no val part (the UOT paper's sizes).
- Flowers102: Core-tuning/COIN use a Kaggle re-split (6,552/818) that cannot be reproduced from
  the official files; we use the official split with train = train+val (2,040) and test (6,149),
  as SCHaNe ("official train/test splits") does.
- Caltech-101 has no official split: 30 train images per class and the rest test, as in the UOT
  paper (following Kornblith et al.), over torchvision's 101 classes (``BACKGROUND_Google``
  dropped). Core-tuning's 102-class 3,060/6,084 variant keeps the background class; we do not.
- Caltech-256 has no official split and SCHaNe does not state one: 60 train images per class
  and the rest test (Griffin et al.'s largest training size), over all 257 folders (clutter
  included, as torchvision lists them).
- Both Caltech splits are drawn once by :data:`CALTECH_SPLIT_SEED`, independent of any trial
  seed, so every trial and sweep agrees on which images are test images.
- CUB-200-2011, Stanford Dogs and SUN397 (first official partition) are read as ImageFolder
  trees pre-split into ``train``/``test`` folders; ImageNet-20 is ImageNette + ImageWoof's
  ``train``/``val`` folders merged into one tree (20 disjoint wnids), ImageNet the ILSVRC-2012
  ``train``/``val`` folders with one sub-folder per wnid.

- iNaturalist 2017 (SCHaNe Table 2): torchvision's ``INaturalist(version="2017")`` indexes
  every image of ``train_val_images`` (renamed ``2017/``) without a split; the official
  train/val split (579,184 / 95,986 images; the test labels were never released, so val is the
  test part, as in the papers) is read from the competition's COCO-style ``train2017.json`` /
  ``val2017.json`` (``images[].file_name`` = ``train_val_images/<super>/<species>/<id>.jpg``).
  Labels are torchvision's category indices (super-category, then species, in sorted order).
- Places365 (SCHaNe Table 2): torchvision's ``Places365`` with ``train-standard`` (1,803,460)
  as train and the official ``val`` (36,500, 100 per class) as test, the 256×256 ("small")
  images every 224-px fine-tuning recipe uses.

A missing dataset with ``download=False`` (or one torchvision cannot download) raises
:class:`FileNotFoundError` naming the dataset, the expected path and what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import ConcatDataset, Dataset, Subset
from torchvision import datasets as tvd

from ftsweep.data.registry import DatasetInfo, LoadedDataset, register_dataset

__all__ = [
    "CALTECH101_TRAIN_PER_CLASS",
    "CALTECH256_TRAIN_PER_CLASS",
    "CALTECH_SPLIT_SEED",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "per_class_train_split",
]

CALTECH_SPLIT_SEED = 0
CALTECH101_TRAIN_PER_CLASS = 30
CALTECH256_TRAIN_PER_CLASS = 60

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


# --------------------------------------------------------------------------- helpers


def _not_found(name: str, root: str, rel: str, *, downloadable: bool, layout: str = "") -> str:
    where = os.path.join(root, rel)
    how = (
        "pass download: true to let torchvision fetch it, or place the files there manually"
        if downloadable
        else "it cannot be downloaded automatically; place the files there manually"
    )
    return f"dataset {name!r} not found: expected {where!r} under root {root!r}; {how}" + (
        f" (layout: {layout})" if layout else ""
    )


def _require(name: str, root: str, rel: str, download: bool, *, downloadable: bool, layout: str = "") -> None:
    """Raise ``FileNotFoundError`` unless ``root/rel`` exists or torchvision will download it."""
    if os.path.exists(os.path.join(root, rel)):
        return
    if download and downloadable:
        return
    raise FileNotFoundError(_not_found(name, root, rel, downloadable=downloadable, layout=layout))


def _build(
    name: str, root: str, rel: str, downloadable: bool, make: Callable[[], Dataset], *, layout: str = ""
):
    """Call a torchvision constructor; its "not found" / "corrupted" becomes FileNotFoundError."""
    try:
        return make()
    except RuntimeError as err:
        msg = str(err).lower()
        if "not found" not in msg and "corrupted" not in msg:
            raise
        raise FileNotFoundError(
            _not_found(name, root, rel, downloadable=downloadable, layout=layout) + f" [torchvision: {err}]"
        ) from err


def _loaded(train: Dataset, test: Dataset, class_names: Sequence[str] | None = None) -> LoadedDataset:
    """A LoadedDataset of two torchvision datasets with ``targets`` and ``classes``."""
    return LoadedDataset(
        train=train,
        test=test,
        train_targets=_int64(train.targets),  # type: ignore[attr-defined]
        test_targets=_int64(test.targets),  # type: ignore[attr-defined]
        class_names=tuple(class_names if class_names is not None else train.classes),  # type: ignore[attr-defined]
    )


def _int64(values: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _check_same_classes(name: str, parts: dict[str, Sequence[str]]) -> tuple[str, ...]:
    """The parts' class lists must agree (their integer labels index the same list)."""
    items = list(parts.items())
    first_name, first = items[0]
    for part, classes in items[1:]:
        if list(classes) != list(first):
            only_a = sorted(set(first) - set(classes))[:5]
            only_b = sorted(set(classes) - set(first))[:5]
            raise ValueError(
                f"dataset {name!r}: parts {first_name!r} and {part!r} have different classes "
                f"({len(first)} vs {len(classes)}; only in {first_name}: {only_a}, "
                f"only in {part}: {only_b})"
            )
    return tuple(first)


def per_class_train_split(
    targets: np.ndarray, train_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``train_per_class`` train indices per class; the rest are test indices.

    Args:
        targets: int array with shape (N,).
        train_per_class: train images per class; every class needs at least one more image.
        seed: fixes the draw.

    Returns:
        ``(train_idx, test_idx)``, sorted int64 arrays partitioning ``arange(N)``.

    Raises:
        ValueError: a class with no more than ``train_per_class`` images.
    """
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    train = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        if len(idx) <= train_per_class:
            raise ValueError(
                f"class {int(c)} has {len(idx)} images; need more than {train_per_class} "
                "to keep train_per_class for training and the rest for test"
            )
        train.append(rng.choice(idx, size=train_per_class, replace=False))
    train_idx = np.sort(np.concatenate(train)).astype(np.int64)
    test_mask = np.ones(len(targets), dtype=bool)
    test_mask[train_idx] = False
    return train_idx, np.flatnonzero(test_mask).astype(np.int64)


def _concat(parts: Sequence[Dataset], targets: Sequence[np.ndarray]) -> tuple[Dataset, np.ndarray]:
    if len(parts) == 1:
        return parts[0], _int64(targets[0])
    return ConcatDataset(list(parts)), np.concatenate([_int64(t) for t in targets])


def _md5_lists() -> dict[str, list[tuple[str, str]]]:
    """Per registered dataset, ``(file under data_root, md5)`` of the files torchvision checks
    (its classes' published lists: CIFAR's ``train_list`` / ``test_list`` / ``meta``, SVHN's
    ``split_list``)."""
    cifar = {
        "cifar10": (tvd.CIFAR10, "cifar-10-batches-py"),
        "cifar100": (tvd.CIFAR100, "cifar-100-python"),
    }
    out = {
        name: [
            (os.path.join(folder, f), md5)
            for f, md5 in (*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"]))
        ]
        for name, (cls, folder) in cifar.items()
    }
    out["svhn"] = [
        (os.path.join("svhn", f), md5) for _, f, md5 in tvd.SVHN.split_list.values() if "extra" not in f
    ]
    return out


def corrupt_files(name: str, root: str) -> list[tuple[str, str]]:
    """``(path, why)`` of each file of a registered dataset under ``root`` that torchvision's
    published md5 refuses (missing, or another checksum); empty when all pass or when the
    dataset has no published list (its loader checks what it reads)."""
    from torchvision.datasets.utils import calculate_md5

    bad = []
    for rel, md5 in _md5_lists().get(name, []):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            bad.append((path, "missing"))
        elif (got := calculate_md5(path)) != md5:
            bad.append((path, f"md5 {got}, published {md5}"))
    return bad


# --------------------------------------------------------------------------- loaders


def _load_cifar(name: str, cls: type[tvd.CIFAR10], folder: str, root: str, download: bool) -> LoadedDataset:
    _require(name, root, folder, download, downloadable=True)

    def make(train: bool) -> tvd.CIFAR10:
        return _build(name, root, folder, True, lambda: cls(root, train=train, download=download))

    return _loaded(make(True), make(False))


def load_cifar10(root: str, download: bool) -> LoadedDataset:
    return _load_cifar("cifar10", tvd.CIFAR10, "cifar-10-batches-py", root, download)


def load_cifar100(root: str, download: bool) -> LoadedDataset:
    return _load_cifar("cifar100", tvd.CIFAR100, "cifar-100-python", root, download)


def load_svhn(root: str, download: bool) -> LoadedDataset:
    base = os.path.join(root, "svhn")
    parts = {}
    for split in ("train", "test"):
        rel = os.path.join("svhn", f"{split}_32x32.mat")
        _require("svhn", root, rel, download, downloadable=True)
        parts[split] = _build(
            "svhn", root, rel, True, lambda s=split: tvd.SVHN(base, split=s, download=download)
        )
    return LoadedDataset(
        train=parts["train"],
        test=parts["test"],
        train_targets=_int64(parts["train"].labels),
        test_targets=_int64(parts["test"].labels),
        class_names=tuple(str(i) for i in range(10)),
    )


def load_dtd(root: str, download: bool) -> LoadedDataset:
    rel = os.path.join("dtd", "dtd")
    _require("dtd", root, rel, download, downloadable=True)
    parts = {
        s: _build("dtd", root, rel, True, lambda s=s: tvd.DTD(root, split=s, download=download))
        for s in ("train", "val", "test")
    }
    classes = _check_same_classes("dtd", {s: d.classes for s, d in parts.items()})
    train, train_t = _concat([parts["train"], parts["val"]], [parts["train"]._labels, parts["val"]._labels])
    return LoadedDataset(
        train=train,
        test=parts["test"],
        train_targets=train_t,
        test_targets=_int64(parts["test"]._labels),
        class_names=classes,
    )


def load_flowers102(root: str, download: bool) -> LoadedDataset:
    rel = "flowers-102"
    _require("flowers102", root, rel, download, downloadable=True)
    parts = {
        s: _build(
            "flowers102",
            root,
            rel,
            True,
            lambda s=s: tvd.Flowers102(root, split=s, download=download),
        )
        for s in ("train", "val", "test")
    }
    train, train_t = _concat([parts["train"], parts["val"]], [parts["train"]._labels, parts["val"]._labels])
    return LoadedDataset(
        train=train,
        test=parts["test"],
        train_targets=train_t,
        test_targets=_int64(parts["test"]._labels),
    )


def load_pets(root: str, download: bool) -> LoadedDataset:
    rel = "oxford-iiit-pet"
    _require("pets", root, rel, download, downloadable=True)
    parts = {
        s: _build("pets", root, rel, True, lambda s=s: tvd.OxfordIIITPet(root, split=s, download=download))
        for s in ("trainval", "test")
    }
    return LoadedDataset(
        train=parts["trainval"],
        test=parts["test"],
        train_targets=_int64(parts["trainval"]._labels),
        test_targets=_int64(parts["test"]._labels),
        class_names=tuple(parts["trainval"].classes),
    )


def load_cars(root: str, download: bool) -> LoadedDataset:
    rel = "stanford_cars"
    layout = (
        "stanford_cars/{devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_train/, "
        "cars_test_annos_withlabels.mat, cars_test/}"
    )
    _require("cars", root, rel, download, downloadable=False, layout=layout)
    # torchvision's Stanford Cars download URL is dead, so never ask it to download.
    parts = {
        s: _build("cars", root, rel, False, lambda s=s: tvd.StanfordCars(root, split=s))
        for s in ("train", "test")
    }
    return LoadedDataset(
        train=parts["train"],
        test=parts["test"],
        train_targets=_int64([t for _, t in parts["train"]._samples]),
        test_targets=_int64([t for _, t in parts["test"]._samples]),
        class_names=tuple(parts["train"].classes),
    )


def load_aircraft(root: str, download: bool) -> LoadedDataset:
    rel = "fgvc-aircraft-2013b"
    _require("aircraft", root, rel, download, downloadable=True)
    parts = {
        s: _build(
            "aircraft",
            root,
            rel,
            True,
            lambda s=s: tvd.FGVCAircraft(root, split=s, annotation_level="variant", download=download),
        )
        for s in ("trainval", "test")
    }
    return LoadedDataset(
        train=parts["trainval"],
        test=parts["test"],
        train_targets=_int64(parts["trainval"]._labels),
        test_targets=_int64(parts["test"]._labels),
        class_names=tuple(parts["trainval"].classes),
    )


def _load_caltech(
    name: str, cls: type, rel: str, train_per_class: int, root: str, download: bool
) -> LoadedDataset:
    _require(name, root, rel, download, downloadable=True)
    full = _build(name, root, rel, True, lambda: cls(root, download=download))
    targets = _int64(full.y)
    train_idx, test_idx = per_class_train_split(targets, train_per_class, CALTECH_SPLIT_SEED)
    return LoadedDataset(
        train=Subset(full, train_idx.tolist()),
        test=Subset(full, test_idx.tolist()),
        train_targets=targets[train_idx],
        test_targets=targets[test_idx],
        class_names=tuple(full.categories),
    )


def load_caltech101(root: str, download: bool) -> LoadedDataset:
    rel = os.path.join("caltech101", "101_ObjectCategories")
    return _load_caltech("caltech101", tvd.Caltech101, rel, CALTECH101_TRAIN_PER_CLASS, root, download)


def load_caltech256(root: str, download: bool) -> LoadedDataset:
    rel = os.path.join("caltech256", "256_ObjectCategories")
    return _load_caltech("caltech256", tvd.Caltech256, rel, CALTECH256_TRAIN_PER_CLASS, root, download)


class VisibleImageFolder(tvd.ImageFolder):
    """torchvision's ``ImageFolder`` (its loader and extensions, as the papers' code reads these
    trees) without hidden entries: a hidden folder (``.ipynb_checkpoints``) is no class and
    nothing under one is an image, and a hidden file (``._0.jpg``, a macOS resource fork copied
    with the tree) is no image — torchvision lists them, and the trial that decodes one fails."""

    def __init__(self, root: str) -> None:
        from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

        def visible(path: str) -> bool:
            rel = os.path.relpath(path, root)
            return has_file_allowed_extension(path, IMG_EXTENSIONS) and not any(
                part.startswith(".") for part in rel.split(os.sep)
            )

        super().__init__(root, is_valid_file=visible)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
        if not classes:
            raise FileNotFoundError(f"no class folder in {directory}")
        return classes, {c: i for i, c in enumerate(classes)}


def _image_folder_loader(
    name: str, folder: str, parts: tuple[str, str]
) -> Callable[[str, bool], LoadedDataset]:
    """A loader for ``root/folder/{parts[0], parts[1]}/<class>/<image>``."""

    def load(root: str, download: bool) -> LoadedDataset:
        layout = f"{folder}/{{{parts[0]},{parts[1]}}}/<class>/<image>"
        for part in parts:
            _require(name, root, os.path.join(folder, part), False, downloadable=False, layout=layout)
        train, test = (VisibleImageFolder(os.path.join(root, folder, p)) for p in parts)
        return _loaded(
            train, test, _check_same_classes(name, {parts[0]: train.classes, parts[1]: test.classes})
        )

    load.__name__ = f"load_{name}"
    load.__doc__ = f"Load {name} from the ImageFolder tree ``root/{folder}/{{{','.join(parts)}}}``."
    return load


_INAT_LAYOUT = (
    "inat2017/2017/<super-category>/<species>/<image>.jpg (train_val_images.tar.gz extracted and "
    "renamed, as torchvision's INaturalist(version='2017') expects) and "
    "inat2017/{train2017,val2017}.json (train_val2017.zip)"
)


def _inat_split_indices(dataset: tvd.INaturalist, json_path: str) -> np.ndarray:
    """Positions in ``dataset`` of the images listed in the COCO-style ``json_path``."""
    where = {
        (dataset.all_categories[cat].replace(os.sep, "/"), fname): i
        for i, (cat, fname) in enumerate(dataset.index)
    }
    with open(json_path) as f:
        files = [img["file_name"] for img in json.load(f)["images"]]
    keys = [("/".join(f.split("/")[-3:-1]), f.split("/")[-1]) for f in files]
    missing = [f for f, k in zip(files, keys, strict=True) if k not in where]
    if missing:
        raise FileNotFoundError(
            f"dataset 'inat2017': {len(missing)} images listed in {json_path!r} are not in the image "
            f"tree (first: {missing[0]!r}); layout: {_INAT_LAYOUT}"
        )
    return np.array([where[k] for k in keys], dtype=np.int64)


def load_inat2017(root: str, download: bool) -> LoadedDataset:
    """iNaturalist 2017, official train / val split (see the module docstring)."""
    del download  # the split files are not downloadable through torchvision
    base = os.path.join(root, "inat2017")
    for rel in ("2017", "train2017.json", "val2017.json"):
        _require(
            "inat2017", root, os.path.join("inat2017", rel), False, downloadable=False, layout=_INAT_LAYOUT
        )
    full = _build("inat2017", root, "inat2017", False, lambda: tvd.INaturalist(base, version="2017"))
    targets = _int64([cat for cat, _ in full.index])
    idx = {s: _inat_split_indices(full, os.path.join(base, f"{s}2017.json")) for s in ("train", "val")}
    return LoadedDataset(
        train=Subset(full, idx["train"].tolist()),
        test=Subset(full, idx["val"].tolist()),
        train_targets=targets[idx["train"]],
        test_targets=targets[idx["val"]],
        class_names=tuple(full.all_categories),
    )


def load_places365(root: str, download: bool) -> LoadedDataset:
    """Places365-Standard, train-standard / val, 256×256 images (see the module docstring)."""
    base = os.path.join(root, "places365")
    layout = (
        "places365/{categories_places365.txt, places365_train_standard.txt, places365_val.txt, "
        "data_256_standard/, val_256/} (torchvision's Places365 layout, small=True)"
    )
    files = ("categories_places365.txt", "places365_train_standard.txt", "places365_val.txt")
    for rel in (*files, "data_256_standard", "val_256"):
        _require(
            "places365", root, os.path.join("places365", rel), download, downloadable=True, layout=layout
        )

    def make(split: str) -> tvd.Places365:
        return _build(
            "places365",
            root,
            "places365",
            True,
            lambda: tvd.Places365(base, split=split, small=True, download=download),
            layout=layout,
        )

    return _loaded(make("train-standard"), make("val"))


# --------------------------------------------------------------------------- registry

# Large-image datasets use DatasetInfo's defaults: 224-px crops and ImageNet mean/std.

register_dataset(
    DatasetInfo(
        name="cifar10",
        files=("cifar-10-batches-py",),
        downloadable=True,
        num_classes=10,
        load=load_cifar10,
        image_size=32,
        num_train=50_000,
        num_test=10_000,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        description="CIFAR-10, official train/test",
    )
)
register_dataset(
    DatasetInfo(
        name="cifar100",
        files=("cifar-100-python",),
        downloadable=True,
        num_classes=100,
        load=load_cifar100,
        image_size=32,
        num_train=50_000,
        num_test=10_000,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        description="CIFAR-100 (fine labels), official train/test",
    )
)
register_dataset(
    DatasetInfo(
        name="svhn",
        files=("svhn/train_32x32.mat", "svhn/test_32x32.mat"),
        downloadable=True,
        num_classes=10,
        load=load_svhn,
        image_size=32,
        num_train=73_257,
        num_test=26_032,
        hflip=False,
        description="SVHN cropped digits, train/test (no extra), label 10 -> 0",
    )
)
register_dataset(
    DatasetInfo(
        name="dtd",
        files=("dtd/dtd",),
        downloadable=True,
        num_classes=47,
        load=load_dtd,
        num_train=3_760,
        num_test=1_880,
        description="Describable Textures, partition 1, train+val / test",
    )
)
register_dataset(
    DatasetInfo(
        name="flowers102",
        files=("flowers-102",),
        downloadable=True,
        num_classes=102,
        load=load_flowers102,
        num_train=2_040,
        num_test=6_149,
        description="Oxford 102 Flowers, official train+val / test",
    )
)
register_dataset(
    DatasetInfo(
        name="pets",
        files=("oxford-iiit-pet",),
        downloadable=True,
        num_classes=37,
        load=load_pets,
        num_train=3_680,
        num_test=3_669,
        description="Oxford-IIIT Pets, trainval / test",
    )
)
register_dataset(
    DatasetInfo(
        name="cars",
        files=("stanford_cars",),
        downloadable=False,
        num_classes=196,
        load=load_cars,
        num_train=8_144,
        num_test=8_041,
        description="Stanford Cars, official train/test (manual placement only)",
    )
)
register_dataset(
    DatasetInfo(
        name="aircraft",
        files=("fgvc-aircraft-2013b",),
        downloadable=True,
        num_classes=100,
        load=load_aircraft,
        num_train=6_667,
        num_test=3_333,
        description="FGVC Aircraft variants, trainval / test",
    )
)
register_dataset(
    DatasetInfo(
        name="caltech101",
        files=("caltech101/101_ObjectCategories",),
        downloadable=True,
        num_classes=101,
        load=load_caltech101,
        num_train=101 * CALTECH101_TRAIN_PER_CLASS,
        num_test=8_677 - 101 * CALTECH101_TRAIN_PER_CLASS,
        description="Caltech-101 (no background), 30 train per class, rest test, seed-fixed",
    )
)
register_dataset(
    DatasetInfo(
        name="caltech256",
        files=("caltech256/256_ObjectCategories",),
        downloadable=True,
        num_classes=257,
        load=load_caltech256,
        num_train=257 * CALTECH256_TRAIN_PER_CLASS,
        num_test=30_607 - 257 * CALTECH256_TRAIN_PER_CLASS,
        description="Caltech-256 (with clutter), 60 train per class, rest test, seed-fixed",
    )
)
register_dataset(
    DatasetInfo(
        name="cub200",
        files=("cub200/train", "cub200/test"),
        downloadable=False,
        num_classes=200,
        load=_image_folder_loader("cub200", "cub200", ("train", "test")),
        num_train=5_994,
        num_test=5_794,
        description="CUB-200-2011, official train/test as ImageFolder trees",
    )
)
register_dataset(
    DatasetInfo(
        name="dogs",
        files=("dogs/train", "dogs/test"),
        downloadable=False,
        num_classes=120,
        load=_image_folder_loader("dogs", "dogs", ("train", "test")),
        num_train=12_000,
        num_test=8_580,
        description="Stanford Dogs, official train/test as ImageFolder trees",
    )
)
register_dataset(
    DatasetInfo(
        name="sun397",
        files=("sun397/train", "sun397/test"),
        downloadable=False,
        num_classes=397,
        load=_image_folder_loader("sun397", "sun397", ("train", "test")),
        num_train=19_850,
        num_test=19_850,
        description="SUN397, first official partition as ImageFolder trees",
    )
)
register_dataset(
    DatasetInfo(
        name="imagenet20",
        files=("imagenet20/train", "imagenet20/val"),
        downloadable=False,
        num_classes=20,
        load=_image_folder_loader("imagenet20", "imagenet20", ("train", "val")),
        num_train=18_494,
        num_test=7_854,
        description="ImageNette + ImageWoof (full size) train / val as one ImageFolder tree",
    )
)
register_dataset(
    DatasetInfo(
        name="imagenet",
        files=("imagenet/train", "imagenet/val"),
        downloadable=False,
        num_classes=1000,
        load=_image_folder_loader("imagenet", "imagenet", ("train", "val")),
        num_train=1_281_167,
        num_test=50_000,
        description="ILSVRC-2012 train / val as ImageFolder trees",
    )
)
register_dataset(
    DatasetInfo(
        name="inat2017",
        files=("inat2017/2017", "inat2017/train2017.json", "inat2017/val2017.json"),
        downloadable=False,
        num_classes=5089,
        load=load_inat2017,
        num_train=579_184,
        num_test=95_986,
        description="iNaturalist 2017, official train / val (json split files; manual placement)",
    )
)
register_dataset(
    DatasetInfo(
        name="places365",
        files=(
            "places365/categories_places365.txt",
            "places365/places365_train_standard.txt",
            "places365/places365_val.txt",
            "places365/data_256_standard",
            "places365/val_256",
        ),
        downloadable=True,
        num_classes=365,
        load=load_places365,
        num_train=1_803_460,
        num_test=36_500,
        description="Places365-Standard, train-standard / val, 256x256 images",
    )
)
