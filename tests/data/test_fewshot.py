"""Few-shot benchmarks on tiny files in their real on-disk formats: CIFAR-100's python pickles
(CIFAR-FS, FC100) and the MetaOptNet/RFS pickles / npz files (miniImageNet, tieredImageNet).

torchvision checks the md5 of CIFAR-100's files; the tests point the class's md5 table at the
files they wrote (``monkeypatch``, restored afterwards), as tests/data/test_catalog.py does.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from torchvision import datasets as tvd

from ftsweep.data import DATASETS, build_data, load_dataset
from ftsweep.data.fewshot import (
    CIFAR100_SUPERCLASSES,
    FEWSHOT_BASE_TEST_PER_CLASS,
    cifar_fs_classes,
    fc100_classes,
)

#: CIFAR-100's fine and coarse label names, alphabetical as in its ``meta`` file
FINE = sorted(c for cs in CIFAR100_SUPERCLASSES.values() for c in cs)
COARSE = sorted(CIFAR100_SUPERCLASSES)
COARSE_OF = {c: s for s, cs in CIFAR100_SUPERCLASSES.items() for c in cs}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar100(root: Path, monkeypatch: pytest.MonkeyPatch, train_per_class: int = 3) -> dict:
    """CIFAR-100 python files with ``train_per_class`` train and 1 test image per class.

    Returns ``{"train"|"test": (images (N, 32, 32, 3), fine labels (N,))}``.
    """
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name, per in (("train", train_per_class), ("test", 1)):
        labels = np.tile(np.arange(100), per)
        images = rng.integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8)
        entry = {
            "data": images.transpose(0, 3, 1, 2).reshape(len(labels), 3072),
            "fine_labels": labels.tolist(),
            "coarse_labels": [COARSE.index(COARSE_OF[FINE[y]]) for y in labels],
            "filenames": [f"img_{i}.png" for i in range(len(labels))],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        written[name] = (images, labels)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": FINE, "coarse_label_names": COARSE}, f, protocol=2)
    cls = tvd.CIFAR100
    monkeypatch.setattr(cls, "train_list", [["train", _md5(folder / "train")]])
    monkeypatch.setattr(cls, "test_list", [["test", _md5(folder / "test")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / "meta")})
    return written


# --------------------------------------------------------------------------- split definitions


@pytest.mark.parametrize(
    ("classes", "sizes"),
    [(cifar_fs_classes, (64, 16, 20)), (fc100_classes, (60, 20, 20))],
)
def test_class_splits_partition_cifar100(classes, sizes) -> None:
    split = classes()
    assert tuple(len(split[s]) for s in ("train", "val", "test")) == sizes
    union = [c for s in ("train", "val", "test") for c in split[s]]
    assert sorted(union) == FINE, "disjoint and covering all 100 classes"


def test_cifar_fs_novel_classes_are_bertinetto_test_list() -> None:
    assert cifar_fs_classes()["test"] == tuple(
        sorted(
            "baby bed bicycle chimpanzee fox leopard man pickup_truck plain poppy rocket rose snail "
            "sweet_pepper table telephone wardrobe whale woman worm".split()
        )
    )


def test_fc100_splits_whole_superclasses() -> None:
    split = fc100_classes()
    for s in ("train", "val", "test"):
        supers = {COARSE_OF[c] for c in split[s]}
        assert all(set(CIFAR100_SUPERCLASSES[sc]) <= set(split[s]) for sc in supers)
    assert {COARSE_OF[c] for c in split["test"]} == {"aquatic_mammals", "insects", "medium_mammals", "people"}


# --------------------------------------------------------------------------- CIFAR-FS, FC100


@pytest.mark.parametrize(("name", "classes"), [("cifar_fs", cifar_fs_classes), ("fc100", fc100_classes)])
def test_cifar_benchmarks_load_base_and_novel(name, classes, tmp_path, monkeypatch) -> None:
    written = write_cifar100(tmp_path, monkeypatch, train_per_class=3)
    split = classes()
    loaded = load_dataset(name, str(tmp_path))
    n_base, n_novel = len(split["train"]), len(split["test"])
    assert n_base == DATASETS[name].num_classes and n_novel == DATASETS[name].num_novel_classes
    assert loaded.class_names == split["train"]
    # counts: 3 train + 1 test image per base class; all 4 images per novel class
    assert np.bincount(loaded.train_targets).tolist() == [3] * n_base
    assert np.bincount(loaded.test_targets).tolist() == [1] * n_base
    assert np.bincount(loaded.novel_targets).tolist() == [4] * n_novel
    assert len(loaded.novel) == 4 * n_novel

    # every item is the written image of the class its label names
    for part, targets, names, sources in (
        (loaded.train, loaded.train_targets, split["train"], ["train"]),
        (loaded.test, loaded.test_targets, split["train"], ["test"]),
        (loaded.novel, loaded.novel_targets, split["test"], ["train", "test"]),
    ):
        pool = {}
        for src in sources:
            images, labels = written[src]
            for img, y in zip(images, labels, strict=True):
                pool.setdefault(FINE[y], []).append(img)
        seen = set()
        for i in range(len(part)):
            img, label = part[i]
            assert label == targets[i]
            cls = names[label]
            assert any(np.array_equal(np.asarray(img), ref) for ref in pool[cls]), (i, cls)
            seen.add(cls)
        assert seen == set(names)
    assert not set(split["test"]) & set(loaded.class_names), "novel classes never among base classes"


def test_build_data_exposes_novel_with_eval_view(tmp_path, monkeypatch) -> None:
    write_cifar100(tmp_path, monkeypatch, train_per_class=3)
    bundle = build_data("cifar_fs", seed=0, root=str(tmp_path), val_fraction=0.34)
    assert bundle.novel is not None and len(bundle.novel) == 80
    assert len(bundle.val) == 64 and len(bundle.labeled) == 128
    x, y, index = bundle.novel[5]
    assert x.shape == (3, 32, 32) and y == bundle.loaded.novel_targets[index]
    again = bundle.novel[5][0]
    assert (x == again).all(), "eval view: deterministic"


def test_ordinary_datasets_have_no_novel_part() -> None:
    bundle = build_data("digits", seed=0)
    assert bundle.novel is None and bundle.loaded.novel is None


def test_missing_meta_classes_is_named(tmp_path, monkeypatch) -> None:
    write_cifar100(tmp_path, monkeypatch, train_per_class=1)
    folder = tmp_path / "cifar-100-python"
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f, protocol=2)
    monkeypatch.setattr(tvd.CIFAR100, "meta", {**tvd.CIFAR100.meta, "md5": _md5(folder / "meta")})
    with pytest.raises(ValueError, match="'cifar_fs'.*lacks the split's classes"):
        load_dataset("cifar_fs", str(tmp_path))


# --------------------------------------------------------------------------- mini/tieredImageNet


def _arrays(labels: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(len(labels), 84, 84, 3), dtype=np.uint8), np.asarray(labels)


def _check_holdout(loaded, x_base: np.ndarray, y_base: np.ndarray, per_class: int) -> None:
    """Base train/test partition every base image; test holds the fixed count per class."""
    k = FEWSHOT_BASE_TEST_PER_CLASS
    n_cls = len(np.unique(y_base))
    assert np.bincount(loaded.test_targets).tolist() == [k] * n_cls
    assert np.bincount(loaded.train_targets).tolist() == [per_class - k] * n_cls
    got = sorted(
        [int(i) for i in loaded.train.indices] + [int(i) for i in loaded.test.indices]
    )  # positions in the stored base array
    assert got == list(range(len(y_base)))
    i = int(loaded.test.indices[3])
    img, label = loaded.test[3]
    assert np.array_equal(np.asarray(img), x_base[i]) and label == loaded.test_targets[3]


def test_mini_imagenet_from_metaoptnet_pickles(tmp_path) -> None:
    per = FEWSHOT_BASE_TEST_PER_CLASS + 2
    folder = tmp_path / "mini_imagenet"
    folder.mkdir()
    y_base = [0, 1, 2] * per  # stored labels 0..63 for base, 80..99 for novel in the real files
    x_base, y_base = _arrays(y_base, 0)
    x_novel, y_novel = _arrays([80, 81] * 4, 1)
    base = {"data": x_base, "labels": y_base.tolist(), "catname2label": {"n01": 0, "n02": 1, "n03": 2}}
    novel = {"data": x_novel, "labels": y_novel.tolist(), "catname2label": {"n80": 80, "n81": 81}}
    for fname, entry in (
        ("miniImageNet_category_split_train_phase_train.pickle", base),
        ("miniImageNet_category_split_test.pickle", novel),
    ):
        with open(folder / fname, "wb") as f:
            pickle.dump(entry, f, protocol=2)

    loaded = load_dataset("mini_imagenet", str(tmp_path))
    assert loaded.class_names == ("n01", "n02", "n03")
    _check_holdout(loaded, x_base, y_base, per)
    assert loaded.novel_targets.tolist() == [0, 1] * 4
    img, label = loaded.novel[5]
    assert np.array_equal(np.asarray(img), x_novel[5]) and label == 1
    again = load_dataset("mini_imagenet", str(tmp_path))
    assert np.array_equal(loaded.test.indices, again.test.indices), "the hold-out is fixed"


def test_mini_imagenet_shared_classes_rejected(tmp_path) -> None:
    folder = tmp_path / "mini_imagenet"
    folder.mkdir()
    x, y = _arrays([0] * (FEWSHOT_BASE_TEST_PER_CLASS + 1), 0)
    for fname in (
        "miniImageNet_category_split_train_phase_train.pickle",
        "miniImageNet_category_split_test.pickle",
    ):
        with open(folder / fname, "wb") as f:
            pickle.dump({"data": x, "labels": y.tolist(), "catname2label": {"n01": 0}}, f, protocol=2)
    with pytest.raises(ValueError, match=r"share classes \['n01'\]"):
        load_dataset("mini_imagenet", str(tmp_path))


def test_tiered_imagenet_from_npz_and_label_pickles(tmp_path) -> None:
    per = FEWSHOT_BASE_TEST_PER_CLASS + 1
    folder = tmp_path / "tiered_imagenet"
    folder.mkdir()
    x_base, y_base = _arrays([5, 7] * per, 2)  # sparse stored labels are remapped to 0, 1
    x_novel, y_novel = _arrays([0, 1, 2] * 2, 3)
    for split, (x, y) in (("train", (x_base, y_base)), ("test", (x_novel, y_novel))):
        np.savez(folder / f"{split}_images.npz", images=x)
        with open(folder / f"{split}_labels.pkl", "wb") as f:
            pickle.dump({"labels": y.tolist(), "label_specific": y}, f, protocol=2)

    loaded = load_dataset("tiered_imagenet", str(tmp_path))
    assert loaded.class_names is None
    _check_holdout(loaded, x_base, y_base, per)
    assert loaded.novel_targets.tolist() == [0, 1, 2] * 2
    assert np.array_equal(np.asarray(loaded.novel[4][0]), x_novel[4])


def test_too_few_base_images_for_the_holdout(tmp_path) -> None:
    folder = tmp_path / "tiered_imagenet"
    folder.mkdir()
    x, y = _arrays([0, 1] * 3, 0)
    for split in ("train", "test"):
        np.savez(folder / f"{split}_images.npz", images=x)
        with open(folder / f"{split}_labels.pkl", "wb") as f:
            pickle.dump({"labels": y.tolist()}, f, protocol=2)
    with pytest.raises(ValueError, match="'tiered_imagenet': every base class needs more than"):
        load_dataset("tiered_imagenet", str(tmp_path))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mini_imagenet", "miniImageNet_category_split_train_phase_train.pickle"),
        ("tiered_imagenet", "train_images.npz"),
        ("cifar_fs", "cifar-100-python"),
    ],
)
def test_not_found_names_the_layout(name, expected, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=expected) as err:
        load_dataset(name, str(tmp_path))
    assert "layout" in str(err.value)
