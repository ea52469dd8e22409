"""The real dataset catalog: static facts, and the loaders on tiny files in the real formats.

The files are written by the tests in each dataset's on-disk layout (CIFAR pickled batches,
SVHN ``.mat``, DTD/Pets/Caltech-101 folders and annotation files, ImageFolder trees of PNGs).
torchvision checks the md5 of CIFAR's and SVHN's files against the official archives; those
checks stay on: the tests point the class's md5 table (``train_list``/``test_list``/``meta``,
``split_list``) at the md5s of the files they wrote, with ``monkeypatch`` so the class is
restored afterwards.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tvd

from ftsweep.data import DATASETS, build_data, load_dataset
from ftsweep.data.catalog import CALTECH101_TRAIN_PER_CLASS, per_class_train_split

CIFAR_LIKE = {"cifar10", "cifar100", "svhn", "cifar_fs", "fc100"}
#: 32-px datasets normalised with CIFAR statistics (the few-shot benchmarks are CIFAR-100 subsets)
CIFAR_STATS = {"cifar10", "cifar100", "cifar_fs", "fc100"}
REAL = sorted(n for n, info in DATASETS.items() if not info.offline)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _color(i: int) -> tuple[int, int, int]:
    """A distinct solid colour per image index (far apart so JPEG keeps them apart)."""
    return ((37 * i) % 256, (91 * i + 40) % 256, (153 * i + 80) % 256)


def _save(path: Path, color: tuple[int, int, int], size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)


def _pixel(img: object) -> np.ndarray:
    return np.asarray(img.convert("RGB"))[4, 4].astype(int)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- static info


# the embedded digits family (digits, digits_source, digits_target) has its own tests
@pytest.mark.parametrize("name", sorted(n for n in DATASETS if n == "digits" or not n.startswith("digits")))
def test_static_info_is_sane(name: str) -> None:
    info = DATASETS[name]
    assert info.name == name
    assert info.num_classes >= 2
    assert info.num_train is not None and info.num_test is not None
    assert info.num_train >= info.num_classes and info.num_test >= info.num_classes
    assert info.image_size == (32 if name in CIFAR_LIKE or name == "digits" else 224)
    assert len(info.mean) == 3 and len(info.std) == 3
    assert all(0.0 < m < 1.0 for m in info.mean) and all(0.0 < s < 1.0 for s in info.std)
    if name not in CIFAR_STATS and name != "digits":
        assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
    assert info.hflip == (name not in {"svhn", "digits"})
    assert callable(info.load)


def test_papers_split_sizes() -> None:
    """The sizes quoted by Core-tuning's Table 1 and the UOT paper's appendix."""
    sizes = {n: (DATASETS[n].num_train, DATASETS[n].num_test) for n in REAL}
    assert sizes["imagenet20"] == (18_494, 7_854)
    assert sizes["dtd"] == (3_760, 1_880)
    assert sizes["aircraft"] == (6_667, 3_333)
    assert sizes["cars"] == (8_144, 8_041)
    assert sizes["pets"] == (3_680, 3_669)
    assert sizes["cub200"] == (5_994, 5_794)
    assert sizes["dogs"] == (12_000, 8_580)
    assert sizes["sun397"] == (19_850, 19_850)
    assert sizes["caltech101"] == (3_030, 5_647)
    assert sizes["svhn"] == (73_257, 26_032)


@pytest.mark.parametrize("name", REAL)
def test_missing_dataset_names_path_and_remedy(name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(name, str(tmp_path), download=False)
    msg = str(err.value)
    assert repr(name) in msg and str(tmp_path) in msg
    assert "download: true" in msg or "cannot be downloaded automatically" in msg
    assert "manually" in msg
    assert list(tmp_path.iterdir()) == [], "a failed load must not create directories"


@pytest.mark.parametrize("name", ["cars", "cub200", "imagenet20", "imagenet"])
def test_no_download_for_manual_datasets(name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cannot be downloaded automatically"):
        load_dataset(name, str(tmp_path), download=True)


def test_per_class_train_split_partitions_and_is_fixed() -> None:
    targets = np.repeat(np.arange(4), [31, 40, 35, 50])
    train, test = per_class_train_split(targets, 30, seed=0)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(targets)))
    assert all(np.sum(targets[train] == c) == 30 for c in range(4))
    train2, _ = per_class_train_split(targets, 30, seed=0)
    assert np.array_equal(train, train2)
    with pytest.raises(ValueError, match="class 0 has 31 images"):
        per_class_train_split(targets, 31, seed=0)


# --------------------------------------------------------------------------- CIFAR


def _write_cifar(
    root: Path, monkeypatch: pytest.MonkeyPatch, cls: type, per_batch: int, num_classes: int
) -> dict[str, np.ndarray]:
    """Write CIFAR-10 or CIFAR-100 python batches; returns the images (N, 32, 32, 3) per file."""
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    label_key = "labels" if cls is tvd.CIFAR10 else "fine_labels"
    written = {}
    offset = 0
    for name, _ in cls.train_list + cls.test_list:
        images = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        labels = [(offset + i) % num_classes for i in range(per_batch)]
        offset += per_batch
        entry = {
            "data": images.transpose(0, 3, 1, 2).reshape(per_batch, 3072),
            label_key: labels,
            "filenames": [f"img_{i}.png" for i in range(per_batch)],
        }
        if cls is tvd.CIFAR100:
            entry["coarse_labels"] = [lab // 5 for lab in labels]
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        written[name] = images
    names_key = cls.meta["key"]
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({names_key: [f"class{c}" for c in range(num_classes)]}, f, protocol=2)
    monkeypatch.setattr(cls, "train_list", [[n, _md5(folder / n)] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, _md5(folder / n)] for n, _ in cls.test_list])
    meta_file = folder / cls.meta["filename"]
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(meta_file)})
    return written


@pytest.mark.parametrize(
    ("name", "cls", "num_classes"), [("cifar10", tvd.CIFAR10, 10), ("cifar100", tvd.CIFAR100, 4)]
)
def test_cifar_loads_from_python_batches(
    name: str, cls: type, num_classes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _write_cifar(tmp_path, monkeypatch, cls, per_batch=6, num_classes=num_classes)
    loaded = load_dataset(name, str(tmp_path))
    n_train = 6 * len(cls.train_list)
    assert len(loaded.train) == n_train and len(loaded.test) == 6
    assert loaded.train_targets.dtype == np.int64 and loaded.test_targets.dtype == np.int64
    assert np.array_equal(loaded.train_targets, np.arange(n_train) % num_classes)
    assert loaded.class_names == tuple(f"class{c}" for c in range(num_classes))
    train_images = np.concatenate([written[n] for n, _ in cls.train_list])
    for i in (0, n_train // 2 + 1, n_train - 1):
        img, label = loaded.train[i]
        assert np.array_equal(np.asarray(img), train_images[i])
        assert label == loaded.train_targets[i]
    img, label = loaded.test[3]
    assert np.array_equal(np.asarray(img), written[cls.test_list[0][0]][3])
    assert label == loaded.test_targets[3]


def test_cifar_corrupted_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_cifar(tmp_path, monkeypatch, tvd.CIFAR10, per_batch=2, num_classes=10)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "ab") as f:
        f.write(b"junk")
    with pytest.raises(FileNotFoundError, match="'cifar10' not found.*corrupted"):
        load_dataset("cifar10", str(tmp_path))


def test_build_data_end_to_end_on_tiny_cifar10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_cifar(tmp_path, monkeypatch, tvd.CIFAR10, per_batch=10, num_classes=10)
    bundle = build_data(
        "cifar10",
        seed=0,
        root=str(tmp_path),
        val_fraction=0.2,
        labels_per_class=2,
        train_views="weak",
        unlabeled_views=("weak", "strong"),
    )
    assert bundle.num_classes == 10
    assert len(bundle.labeled) == 20 and len(bundle.val) == 10
    assert bundle.unlabeled is not None and len(bundle.unlabeled) == 50 - 20 - 10
    assert len(bundle.test) == 10
    all_idx = np.concatenate([bundle.splits.labeled, bundle.splits.unlabeled, bundle.splits.val])
    assert np.array_equal(np.sort(all_idx), np.arange(50))

    x, y, index = bundle.labeled[0]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y == bundle.loaded.train_targets[index]

    (weak, strong), y_u, index_u = bundle.unlabeled[0]
    assert weak.shape == strong.shape == (3, 32, 32)
    assert y_u == -1 and index_u in set(bundle.splits.unlabeled.tolist())

    x_t, y_t, i_t = bundle.test[4]
    img, _ = bundle.loaded.test[4]
    mean = torch.tensor(DATASETS["cifar10"].mean).view(3, 1, 1)
    std = torch.tensor(DATASETS["cifar10"].std).view(3, 1, 1)
    raw = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    assert torch.allclose(x_t, (raw - mean) / std, atol=1e-5), "eval view = normalise only"
    assert (y_t, i_t) == (int(bundle.loaded.test_targets[4]), 4)


# --------------------------------------------------------------------------- SVHN


def test_svhn_loads_mat_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.io import savemat

    folder = tmp_path / "svhn"
    folder.mkdir()
    rng = np.random.default_rng(1)
    split_list = dict(tvd.SVHN.split_list)
    data = {}
    for split, n in (("train", 7), ("test", 5)):
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.arange(1, n + 1).reshape(n, 1) % 10 + 1  # SVHN's labels are 1..10, 10 = digit 0
        path = folder / f"{split}_32x32.mat"
        savemat(path, {"X": x, "y": y})
        data[split] = (x, y.ravel())
        url, filename, _ = split_list[split]
        split_list[split] = [url, filename, _md5(path)]
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)

    loaded = load_dataset("svhn", str(tmp_path))
    assert len(loaded.train) == 7 and len(loaded.test) == 5
    x, y = data["train"]
    assert np.array_equal(loaded.train_targets, np.where(y == 10, 0, y))
    assert loaded.train_targets.dtype == np.int64
    img, label = loaded.train[2]
    assert np.array_equal(np.asarray(img), x[..., 2]) and label == loaded.train_targets[2]
    assert np.array_equal(np.asarray(loaded.test[4][0]), data["test"][0][..., 4])


# --------------------------------------------------------------------------- DTD, Pets, Caltech


def test_dtd_train_is_train_plus_val(tmp_path: Path) -> None:
    base = tmp_path / "dtd" / "dtd"
    classes = ["banded", "dotted", "zigzagged"]
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    colors = {}
    k = 0
    for c in classes:
        for split in lines:
            for j in range(2):
                name = f"{c}_{split}_{j}.jpg"
                _save(base / "images" / c / name, _color(k))
                colors[f"{c}/{name}"] = _color(k)
                lines[split].append(f"{c}/{name}")
                k += 1
    (base / "labels").mkdir()
    for split, rows in lines.items():
        (base / "labels" / f"{split}1.txt").write_text("\n".join(rows) + "\n")

    loaded = load_dataset("dtd", str(tmp_path))
    assert loaded.class_names == tuple(classes)
    assert len(loaded.train) == 12 and len(loaded.test) == 6
    expected = [classes.index(r.split("/")[0]) for r in lines["train"] + lines["val"]]
    assert np.array_equal(loaded.train_targets, expected)
    for i in (0, 5, 11):
        img, label = loaded.train[i]
        row = (lines["train"] + lines["val"])[i]
        assert label == expected[i]
        assert np.abs(_pixel(img) - colors[row]).max() <= 8


def test_pets_trainval_and_test(tmp_path: Path) -> None:
    base = tmp_path / "oxford-iiit-pet"
    breeds = [("Abyssinian", 1, 1), ("american_bulldog", 2, 2), ("Bengal", 3, 1)]
    rows: dict[str, list[str]] = {"trainval": [], "test": []}
    colors = {}
    k = 0
    for breed, label, species in breeds:
        for split in rows:
            for j in range(2):
                image_id = f"{breed}_{split}{j}"
                _save(base / "images" / f"{image_id}.jpg", _color(k))
                colors[image_id] = _color(k)
                rows[split].append(f"{image_id} {label} {species} 1")
                k += 1
    (base / "annotations").mkdir()
    for split, r in rows.items():
        (base / "annotations" / f"{split}.txt").write_text("\n".join(r) + "\n")

    loaded = load_dataset("pets", str(tmp_path))
    assert len(loaded.train) == 6 and len(loaded.test) == 6
    assert np.array_equal(loaded.train_targets, [0, 0, 1, 1, 2, 2])
    assert loaded.class_names == ("Abyssinian", "American Bulldog", "Bengal")
    img, label = loaded.test[3]
    assert label == 1
    assert np.abs(_pixel(img) - colors[rows["test"][3].split()[0]]).max() <= 8


def test_caltech101_thirty_per_class_without_background(tmp_path: Path) -> None:
    base = tmp_path / "caltech101" / "101_ObjectCategories"
    counts = {"BACKGROUND_Google": 3, "accordion": 32, "airplanes": 34}
    for c, n in counts.items():
        for j in range(1, n + 1):
            _save(base / c / f"image_{j:04d}.jpg", _color(j), size=8)

    loaded = load_dataset("caltech101", str(tmp_path))
    assert loaded.class_names == ("accordion", "airplanes")
    per = CALTECH101_TRAIN_PER_CLASS
    assert np.bincount(loaded.train_targets).tolist() == [per, per]
    assert np.bincount(loaded.test_targets).tolist() == [32 - per, 34 - per]
    again = load_dataset("caltech101", str(tmp_path))
    assert loaded.train.indices == again.train.indices, "the split is fixed, not per call"
    img, label = loaded.test[-1]
    assert label == 1 and img.size == (8, 8)


# --------------------------------------------------------------------------- ImageFolder trees


@pytest.mark.parametrize(("name", "parts"), [("imagenet20", ("train", "val")), ("cub200", ("train", "test"))])
def test_image_folder_trees(name: str, parts: tuple[str, str], tmp_path: Path) -> None:
    classes = ["n01440764", "n02086240", "n02088364"]
    colors = {}
    for p, part in enumerate(parts):
        for c, cls in enumerate(classes):
            for j in range(2 + p):
                color = _color(100 * p + 10 * c + j)
                _save(tmp_path / name / part / cls / f"{j}.png", color)
                colors[(part, c, j)] = color

    loaded = load_dataset(name, str(tmp_path))
    assert loaded.class_names == tuple(classes)
    assert np.array_equal(loaded.train_targets, [0, 0, 1, 1, 2, 2])
    assert np.array_equal(loaded.test_targets, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    img, label = loaded.test[5]
    assert label == 1 and tuple(_pixel(img)) == colors[(parts[1], 1, 2)]
    img, label = loaded.train[2]
    assert label == 1 and tuple(_pixel(img)) == colors[(parts[0], 1, 0)]


def test_image_folder_trees_skip_hidden_files_and_folders(tmp_path: Path) -> None:
    """A tree copied from a Mac (``._0.png`` resource forks, ``.DS_Store``) or opened in Jupyter
    (``.ipynb_checkpoints``): torchvision's ImageFolder listed the resource fork as an image (the
    trial decoding it failed) and the hidden folder as a class."""
    for part in ("train", "test"):
        for c, cls in enumerate(("a", "b")):
            _save(tmp_path / "cub200" / part / cls / "0.png", _color(c))
        (tmp_path / "cub200" / part / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07 Mac OS X")
        (tmp_path / "cub200" / part / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        _save(tmp_path / "cub200" / part / ".ipynb_checkpoints" / "x.png", (0, 0, 0))
        _save(tmp_path / "cub200" / part / "b" / ".hidden" / "1.png", (0, 0, 0))
    loaded = load_dataset("cub200", str(tmp_path))
    assert loaded.class_names == ("a", "b")
    assert len(loaded.train) == len(loaded.test) == 2
    assert [tuple(_pixel(loaded.train[i][0])) for i in range(2)] == [_color(0), _color(1)]


def test_image_folder_class_mismatch_is_named(tmp_path: Path) -> None:
    _save(tmp_path / "dogs" / "train" / "beagle" / "0.png", (1, 2, 3))
    _save(tmp_path / "dogs" / "train" / "pug" / "0.png", (1, 2, 3))
    _save(tmp_path / "dogs" / "test" / "beagle" / "0.png", (1, 2, 3))
    with pytest.raises(ValueError, match=r"'dogs'.*only in train: \['pug'\]"):
        load_dataset("dogs", str(tmp_path))


# --------------------------------------------------------------------------- iNat2017, Places365


def test_sizes_of_schane_table2_datasets() -> None:
    """iNat2017 (competition README: 5,089 classes, 579,184 / 95,986) and Places365-Standard."""
    assert (
        DATASETS["inat2017"].num_classes,
        DATASETS["inat2017"].num_train,
        DATASETS["inat2017"].num_test,
    ) == (
        5089,
        579_184,
        95_986,
    )
    info = DATASETS["places365"]
    assert (info.num_classes, info.num_train, info.num_test) == (365, 1_803_460, 36_500)


def _write_inat2017(root: Path) -> tuple[dict[str, list[str]], dict[str, tuple[int, int, int]]]:
    """A train_val_images tree (renamed 2017/) and COCO-style train2017/val2017 json files."""
    import json

    species = {"Aves": ["Corvus corax", "Pica pica"], "Fungi": ["Amanita muscaria"]}
    files: dict[str, list[str]] = {"train": [], "val": []}
    colors = {}
    k = 0
    for sup, names in species.items():
        for sp in names:
            for j in range(3):
                rel = f"{sup}/{sp}/{k:04d}.jpg"
                _save(root / "inat2017" / "2017" / rel, _color(k))
                colors[rel] = _color(k)
                files["train" if j < 2 else "val"].append(f"train_val_images/{rel}")
                k += 1
    for split, names in files.items():
        doc = {
            "images": [{"id": i, "file_name": f, "width": 16, "height": 16} for i, f in enumerate(names)],
            "annotations": [{"id": i, "image_id": i, "category_id": 0} for i in range(len(names))],
            "categories": [],
        }
        (root / "inat2017" / f"{split}2017.json").write_text(json.dumps(doc))
    return files, colors


def test_inat2017_official_split_from_json(tmp_path: Path) -> None:
    files, colors = _write_inat2017(tmp_path)
    loaded = load_dataset("inat2017", str(tmp_path))
    # torchvision's category order: super-category, then species, sorted
    assert loaded.class_names == ("Aves/Corvus corax", "Aves/Pica pica", "Fungi/Amanita muscaria")
    assert len(loaded.train) == 6 and len(loaded.test) == 3
    assert np.array_equal(loaded.train_targets, [0, 0, 1, 1, 2, 2])
    assert np.array_equal(loaded.test_targets, [0, 1, 2])
    for part, targets, names in ((loaded.train, loaded.train_targets, files["train"]), (loaded.test, loaded.test_targets, files["val"])):  # fmt: skip
        for i, name in enumerate(names):
            img, label = part[i]
            rel = name.removeprefix("train_val_images/")
            assert label == targets[i] and np.abs(_pixel(img) - colors[rel]).max() <= 8


def test_inat2017_image_missing_from_tree_is_named(tmp_path: Path) -> None:
    import json

    _write_inat2017(tmp_path)
    path = tmp_path / "inat2017" / "val2017.json"
    doc = json.loads(path.read_text())
    doc["images"].append({"id": 99, "file_name": "train_val_images/Aves/Pica pica/gone.jpg"})
    path.write_text(json.dumps(doc))
    with pytest.raises(FileNotFoundError, match="1 images listed in .*val2017.json.*gone.jpg"):
        load_dataset("inat2017", str(tmp_path))


def _write_places365(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, int, int]]:
    base = root / "places365"
    base.mkdir(parents=True)
    cats = ["/a/airfield", "/b/bakery", "/c/canyon"]
    (base / "categories_places365.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(cats)))
    colors, train_rows, val_rows = {}, [], []
    k = 0
    for i, c in enumerate(cats):
        for j in range(2):
            rel = f"{c}/{j + 1:08d}.jpg"
            _save(base / "data_256_standard" / rel.lstrip("/"), _color(k))
            colors[f"train{rel}"] = _color(k)
            train_rows.append(f"{rel} {i}")
            k += 1
        name = f"Places365_val_{i + 1:08d}.jpg"
        _save(base / "val_256" / name, _color(k))
        colors[f"val/{name}"] = _color(k)
        val_rows.append(f"{name} {2 - i}")  # val labels in another order than the files
        k += 1
    (base / "places365_train_standard.txt").write_text("\n".join(train_rows) + "\n")
    (base / "places365_val.txt").write_text("\n".join(val_rows) + "\n")
    cls = tvd.Places365
    monkeypatch.setattr(
        cls, "_CATEGORIES_META", ("categories_places365.txt", _md5(base / "categories_places365.txt"))
    )
    monkeypatch.setattr(
        cls,
        "_FILE_LIST_META",
        {
            **cls._FILE_LIST_META,
            "train-standard": ("places365_train_standard.txt", _md5(base / "places365_train_standard.txt")),
            "val": ("places365_val.txt", _md5(base / "places365_val.txt")),
        },
    )
    return colors


def test_places365_train_standard_and_val(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colors = _write_places365(tmp_path, monkeypatch)
    loaded = load_dataset("places365", str(tmp_path))
    assert loaded.class_names == ("/a/airfield", "/b/bakery", "/c/canyon")
    assert np.array_equal(loaded.train_targets, [0, 0, 1, 1, 2, 2])
    assert np.array_equal(loaded.test_targets, [2, 1, 0])
    img, label = loaded.train[3]
    assert label == 1 and np.abs(_pixel(img) - colors["train/b/bakery/00000002.jpg"]).max() <= 8
    img, label = loaded.test[0]
    assert label == 2 and np.abs(_pixel(img) - colors["val/Places365_val_00000001.jpg"]).max() <= 8


def test_places365_corrupted_file_list_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_places365(tmp_path, monkeypatch)
    with open(tmp_path / "places365" / "places365_val.txt", "a") as f:
        f.write("junk 0\n")
    with pytest.raises(FileNotFoundError, match="'places365' not found.*corrupted"):
        load_dataset("places365", str(tmp_path))


def test_places365_missing_image_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    _write_places365(tmp_path, monkeypatch)
    shutil.rmtree(tmp_path / "places365" / "val_256")
    with pytest.raises(FileNotFoundError, match="val_256"):
        load_dataset("places365", str(tmp_path))
