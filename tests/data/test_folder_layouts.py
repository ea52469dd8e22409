"""Image-folder layouts that mislead: one class, a part or class folder that is another (a
symlink), hidden files; and a ``data_root`` that is a file. Tiny real PNG trees in tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ftsweep.config import ConfigError, TrainConfig
from ftsweep.config.base import DataConfig
from ftsweep.data import get_dataset_info, load_dataset, unreadable_images, validate_dataset
from ftsweep.pretrain.simclr import SimCLRConfig


def _png(path: Path, colour: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (colour, 255 - colour, 40)).save(path)


def _tree(root: Path, classes: tuple[str, ...] = ("cat", "dog"), train: int = 3, test: int = 1) -> Path:
    """``root/{train,test}/<class>/<i>.png``: real PNGs, one colour per class."""
    for c, cls in enumerate(classes):
        for part, n in (("train", train), ("test", test)):
            for i in range(n):
                _png(root / part / cls / f"{i}.png", 60 * c + i)
    return root.resolve()  # the scan names resolved paths


def _refused(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        validate_dataset(str(root))
    assert err.value.field == "dataset" and err.value.value == str(root)
    assert "train/<class>/<image>" in err.value.allowed  # the expected layout
    return err.value


# --- fewer than 2 classes -------------------------------------------------------------------


def test_a_single_class_folder_is_refused(tmp_path) -> None:
    root = _tree(tmp_path / "one", classes=("a",))
    err = _refused(root)
    assert err.allowed.startswith(
        f"{root / 'train'} has 1 class folder (a); at least 2 class folders are needed"
    )
    with pytest.raises(ConfigError, match="at least 2 class folders are needed"):
        TrainConfig.from_dict({"dataset": str(root)})  # at validation, before anything runs


def test_a_hidden_second_class_does_not_count(tmp_path) -> None:
    root = _tree(tmp_path / "one", classes=("a", ".b"))
    assert "has 1 class folder (a); at least 2" in _refused(root).allowed


def test_two_classes_are_enough(tmp_path) -> None:
    root = _tree(tmp_path / "two", classes=("a", "b"))
    validate_dataset(str(root))
    assert get_dataset_info(str(root)).num_classes == 2


# --- parts and class folders that are the same directory ------------------------------------


@pytest.mark.parametrize(
    ("link", "target"),
    [("test", "train"), ("val", "train"), ("val", "test")],
)
def test_a_part_that_is_another_part_is_refused(tmp_path, link: str, target: str) -> None:
    root = _tree(tmp_path / "imgs")
    if (root / link).exists():
        shutil.rmtree(root / link)
    os.symlink(target, root / link)  # relative: root/<link> -> root/<target>
    err = _refused(root)
    first, second = sorted((link, target), key=("train", "test", "val").index)
    assert err.allowed.startswith(
        f"{root / second} is the same directory as {root / first} (both resolve to {root / first}); "
        "each part and each class folder must be a directory of its own"
    )


def test_a_class_folder_linked_to_another_parts_class_is_refused(tmp_path) -> None:
    root = _tree(tmp_path / "imgs")
    shutil.rmtree(root / "test" / "dog")
    os.symlink(os.path.join("..", "train", "dog"), root / "test" / "dog")
    err = _refused(root)
    assert f"{root / 'test' / 'dog'} is the same directory as {root / 'train' / 'dog'}" in err.allowed


def test_two_class_folders_of_one_part_that_are_one_directory_are_refused(tmp_path) -> None:
    root = _tree(tmp_path / "imgs", classes=("cat", "kitty"))
    shutil.rmtree(root / "train" / "kitty")
    os.symlink("cat", root / "train" / "kitty")  # the same images under two labels
    err = _refused(root)
    assert f"{root / 'train' / 'kitty'} is the same directory as {root / 'train' / 'cat'}" in err.allowed


def test_symlinks_to_folders_of_their_own_are_fine(tmp_path) -> None:
    """A part or a class folder may be a symlink, to a directory no other folder is."""
    store = _tree(tmp_path / "store")
    root = tmp_path / "imgs"
    (root / "test").mkdir(parents=True)
    os.symlink(store / "train", root / "train")
    for cls in ("cat", "dog"):
        os.symlink(store / "test" / cls, root / "test" / cls)
    validate_dataset(str(root))
    info = get_dataset_info(str(root))
    assert info.num_classes == 2 and info.num_train == 6 and info.num_test == 2


def test_an_own_val_part_is_fine(tmp_path) -> None:
    root = _tree(tmp_path / "imgs")
    for c, cls in enumerate(("cat", "dog")):
        _png(root / "val" / cls / "0.png", 200 + c)
    validate_dataset(str(root))
    assert len(load_dataset(str(root)).val) == 2


# --- hidden files ---------------------------------------------------------------------------


def test_hidden_files_and_hidden_subfolders_are_not_images(tmp_path) -> None:
    root = _tree(tmp_path / "imgs")
    cat = root / "train" / "cat"
    _png(cat / ".hidden.png", 7)  # a real PNG, but hidden
    (cat / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble resource fork")  # macOS junk
    _png(cat / ".thumbs" / "1.png", 8)  # inside a hidden subfolder
    _png(cat / "more" / "3.png", 9)  # a visible subfolder's image counts
    info = get_dataset_info(str(root))
    assert info.num_train == 7 and info.num_test == 2
    files = load_dataset(str(root)).train.files
    assert str(cat / "more" / "3.png") in files
    assert not any("/." in f for f in files)
    assert unreadable_images(str(root)) == []  # the junk ._0.png is not read, so not reported


def test_a_class_with_only_hidden_images_holds_no_image(tmp_path) -> None:
    root = _tree(tmp_path / "imgs")
    for p in (root / "test" / "dog").iterdir():
        p.rename(p.with_name("." + p.name))
    assert "class folder " + str(root / "test" / "dog") + " holds no image" in _refused(root).allowed


# --- data_root -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda v: DataConfig.from_dict({"data_root": v}),
        lambda v: TrainConfig.from_dict({"data_root": v}),
        lambda v: SimCLRConfig.from_dict({"data_root": v}),
    ],
    ids=["DataConfig", "TrainConfig", "SimCLRConfig"],
)
def test_a_data_root_that_is_a_file_is_refused(tmp_path, build) -> None:
    file = tmp_path / "passwd"
    file.write_text("root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(ConfigError) as err:
        build(str(file))
    assert err.value.field == "data_root" and err.value.value == str(file)
    assert (
        err.value.allowed == f"must be a directory (or a path not made yet, for a download); {file} is a file"
    )
    # a directory, and a path a download will make, are fine
    assert build(str(tmp_path)).data_root == str(tmp_path)
    assert build(str(tmp_path / "not" / "made")).data_root == str(tmp_path / "not" / "made")


def test_a_symlinked_image_whose_target_is_gone_is_named_not_dropped(tmp_path) -> None:
    """A folder of links into a volume that is not mounted: each dangling link was skipped, so
    the class lost its images silently and validation passed."""
    root = _tree(tmp_path / "links", train=3)
    store = tmp_path / "store"
    _png(store / "kept.png", 9)
    os.symlink(store / "kept.png", root / "train" / "cat" / "linked.png")
    os.symlink(store / "gone.png", root / "train" / "cat" / "dangling.png")
    assert get_dataset_info(str(root)).num_train == 3 + 3 + 2  # both links count
    ((path, reason),) = unreadable_images(str(root))
    assert path == str(root / "train" / "cat" / "dangling.png") and "No such file" in reason
