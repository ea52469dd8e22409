"""Image-folder datasets (``dataset: ./my_images``) on a tiny real PNG tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ftsweep.config import ConfigError, TrainConfig
from ftsweep.data import build_data, get_dataset_info, is_folder_dataset, load_dataset, validate_dataset

CLASSES = ("cat", "dog", "owl")


def _png(path: Path, colour: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (colour, 255 - colour, 40)).save(path)


def make_tree(root: Path, train: int = 6, test: int = 2, val: int = 0, classes=CLASSES) -> Path:
    for c, cls in enumerate(classes):
        for part, n in (("train", train), ("test", test), ("val", val)):
            for i in range(n):
                _png(root / part / cls / f"{i}.png", 40 * c + i)
    return root


def test_a_folder_is_a_dataset_with_its_own_classes(tmp_path) -> None:
    root = make_tree(tmp_path / "imgs")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")  # ignored
    info = get_dataset_info(str(root))
    assert info.num_classes == 3 and info.num_train == 18 and info.num_test == 6
    loaded = load_dataset(str(root))
    assert loaded.class_names == CLASSES
    assert np.bincount(loaded.train_targets).tolist() == [6, 6, 6]
    img, label = loaded.test[5]
    assert img.mode == "RGB" and img.size == (12, 10) and label == 2
    bundle = build_data(str(root), seed=0, val_fraction=0.2, labels_per_class=2, image_size=16)
    assert bundle.num_classes == 3  # the classifier is 3-way, not a registered dataset's size
    x, y, _ = bundle.labeled[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and 0 <= y < 3
    assert len(bundle.labeled) == 6 and len(bundle.val) == 3 and len(bundle.test) == 6


def test_a_relative_path_and_the_config(tmp_path, monkeypatch) -> None:
    make_tree(tmp_path / "my_images")
    monkeypatch.chdir(tmp_path)
    assert is_folder_dataset("./my_images") and is_folder_dataset("my_images")
    assert not is_folder_dataset("cifar10") and not is_folder_dataset("no_such_name")
    cfg = TrainConfig.from_dict({"dataset": "./my_images", "labels_per_class": 4})
    assert cfg.dataset == "./my_images"
    from ftsweep.config.checks import check_job

    # 6 per class, 1 each to validation: the exact split (before Ray starts) refuses
    with pytest.raises(ConfigError, match="at most 5 per class"):
        check_job(TrainConfig, {"dataset": "./my_images", "labels_per_class": 6, "pretrained": "none"}, {})
    with pytest.raises(ConfigError, match="must be one of .*or an image-folder path"):
        TrainConfig.from_dict({"dataset": "no_such_name"})


def test_an_own_val_part_is_the_validation_split(tmp_path) -> None:
    root = make_tree(tmp_path / "imgs", val=2)
    bundle = build_data(str(root), seed=1, val_fraction=0.1)
    assert len(bundle.val) == 6 and len(bundle.labeled) == 18  # nothing carved from train
    assert sorted(int(bundle.val[i][1]) for i in range(6)) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda r: __import__("shutil").rmtree(r / "train"), "train does not exist"),
        (lambda r: __import__("shutil").rmtree(r / "test"), "test does not exist"),
        (lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()], "dog holds no image"),
        (lambda r: __import__("shutil").rmtree(r / "test" / "owl"), "only in train: \\['owl'\\]"),
        (lambda r: _png(r / "test" / "bat" / "0.png", 1), "only in test: \\['bat'\\]"),
        (lambda r: _png(r / "val" / "cat" / "0.png", 1), "only in train: \\['dog', 'owl'\\]"),
        (lambda r: (r / "train" / "cat" / "0.png").write_bytes(b"not a png"), "0.png cannot be read"),
    ],
)
def test_a_wrong_layout_names_the_path_and_the_layout(tmp_path, breakage, expected) -> None:
    root = make_tree(tmp_path / "imgs")
    breakage(root)
    with pytest.raises(ConfigError, match=expected) as err:
        validate_dataset(str(root))
    assert err.value.field == "dataset" and str(root) in str(err.value)
    assert "train/<class>/<image>" in err.value.allowed or "cannot be read" in expected


def test_a_missing_folder(tmp_path) -> None:
    with pytest.raises(ConfigError, match="is not a directory; expected an image-folder dataset"):
        TrainConfig.from_dict({"dataset": str(tmp_path / "nowhere")})


def test_a_folders_label_budget_is_checked_on_its_exact_split(tmp_path) -> None:
    """A folder's labels are at hand: the split is drawn exactly before Ray starts, where the
    estimate from its image count accepted a class too small and refused a budget that fits."""
    from ftsweep.config.checks import check_job
    from ftsweep.methods.ce import CEConfig

    uneven = tmp_path / "uneven"
    make_tree(uneven, train=30, classes=("a",))
    make_tree(uneven, train=3, classes=("b",))  # 3 images: 1 to validation, 2 left
    fixed = {"dataset": str(uneven), "pretrained": "none", "batch_size": 4, "labels_per_class": 5}
    with pytest.raises(ConfigError, match="class 1 has only 2 training images after the validation split"):
        check_job(CEConfig, fixed, {})
    single = make_tree(tmp_path / "single", train=1, classes=("a", "b"))  # 1 image a class
    # the estimate said "about 1 training images … at most 0 per class"; the split keeps both
    check_job(CEConfig, {**fixed, "dataset": str(single), "labels_per_class": 1}, {})


def test_split_sizes_of_a_folder_with_its_own_val_part(tmp_path) -> None:
    from ftsweep.plan import split_sizes

    root = make_tree(tmp_path / "imgs", train=6, test=2, val=2)
    sizes = split_sizes(TrainConfig.from_dict({"dataset": str(root), "labels_per_class": 4}))
    # as build_data: val/ validates, nothing is carved from train/
    assert sizes == {
        "labeled": 3 * 4,
        "unlabeled": 3 * 2,
        "val": 3 * 2,
        "test": 3 * 2,
        "novel": 0,
        "val_fewest": 2,
    }


def test_val_labels_per_class_limits_a_folders_own_val_part_by_its_own_labels(tmp_path) -> None:
    # val/ holds 4 images of each class: 2 per class are 2 of each, not the first rows' labels
    # read from train/ (which gave 4 images, one of them a cat)
    from ftsweep.methods.ce import CEMethod
    from ftsweep.plan import split_sizes

    root = make_tree(tmp_path / "imgs", train=6, test=2, val=4)
    config = {"dataset": str(root), "pretrained": "none", "device": "cpu", "epochs": 1, "image_size": 16}
    method = CEMethod({**config, "val_labels_per_class": 2})
    labels = sorted(int(method.data.val[i][1]) for i in range(len(method.data.val)))
    assert labels == [0, 0, 1, 1, 2, 2]
    cfg = TrainConfig.from_dict({**config, "val_labels_per_class": 2})
    assert split_sizes(cfg)["val"] == 6  # the plan counts what the trial keeps


def test_val_labels_per_class_above_the_val_part_is_refused_before_ray(tmp_path) -> None:
    from ftsweep.config.checks import check_job

    root = make_tree(tmp_path / "imgs", train=6, test=2, val=3)
    good = {"dataset": str(root), "pretrained": "none", "val_labels_per_class": 3, "labels_per_class": 4}
    check_job(TrainConfig, good, {})
    with pytest.raises(
        ConfigError, match="the val/ part of .* has only 3 images in its smallest class; allowed: at most 3$"
    ):
        check_job(TrainConfig, {**good, "val_labels_per_class": 4}, {})


def test_every_image_header_is_read_before_ray(tmp_path) -> None:
    """The scan opens the first image of a class; the check before Ray starts reads every
    header, so an empty or non-image file deep in a class is bad input, not a trial that fails
    at the epoch that loads it."""
    from ftsweep.config.checks import check_job
    from ftsweep.data import unreadable_images
    from ftsweep.methods.ce import CEConfig

    root = make_tree(tmp_path / "imgs")
    fixed = {"dataset": str(root), "pretrained": "none", "labels_per_class": 2}
    assert unreadable_images(str(root)) == []
    check_job(CEConfig, fixed, {})  # a good folder passes
    empty, text = root / "train" / "dog" / "4.png", root / "test" / "owl" / "1.png"
    empty.write_bytes(b"")
    text.write_text("<html>a saved web page, not an image</html>")
    validate_dataset(str(root))  # the layout and each class's first image are fine
    bad = unreadable_images(str(root), workers=2)
    assert [p for p, _ in bad] == [str(empty), str(text)]  # file order: train part, then test
    assert all("cannot identify image file" in reason for _, reason in bad)
    with pytest.raises(ConfigError) as err:
        check_job(CEConfig, fixed, {"dataset": "datasets[0]"})
    assert err.value.field == "datasets[0]" and err.value.value == str(root)
    assert err.value.allowed.startswith(f"image {empty} cannot be read (cannot identify image file")
    assert f"(2 unreadable images; the next: {text}); remove or replace it" in err.value.allowed


def test_a_good_header_is_read_as_an_image(tmp_path) -> None:
    """A JPEG and a grayscale PNG, other formats of the same tree, are images (no false alarm)."""
    from ftsweep.data import unreadable_images

    root = make_tree(tmp_path / "imgs", train=2, test=1)
    Image.new("RGB", (9, 7), (1, 2, 3)).save(root / "train" / "cat" / "x.jpg", quality=80)
    Image.new("L", (5, 5), 3).save(root / "test" / "dog" / "g.png")
    assert unreadable_images(str(root)) == []


def test_a_16_bit_grey_image_is_scaled_over_its_range_not_clipped(tmp_path) -> None:
    """A 16-bit PNG (microscopy, X-ray) with values 0 … 65535: PIL's convert("RGB") clips at 255,
    so all but its darkest 1/256 came out white; it is read as value · 255/65535, rounded."""
    from ftsweep.data import unreadable_images

    root = make_tree(tmp_path / "imgs", train=2, test=1)
    values = np.array([[0, 257, 1000, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(root / "train" / "cat" / "wide.png")
    assert Image.open(root / "train" / "cat" / "wide.png").mode == "I;16"
    assert unreadable_images(str(root)) == []
    loaded = load_dataset(str(root))
    img, _ = loaded.train[loaded.train.files.index(str(root / "train" / "cat" / "wide.png"))]
    pixels = np.asarray(img)
    assert img.mode == "RGB" and pixels.shape == (1, 5, 3)
    expected = [round(v * 255 / 65535) for v in values[0].tolist()]  # 0, 1, 4, 128, 255
    assert pixels[0, :, 0].tolist() == pixels[0, :, 2].tolist() == expected


def test_a_photo_is_read_upright_as_its_exif_orientation_says(tmp_path) -> None:
    """A phone stores a portrait photo as landscape pixels with EXIF orientation 6 (turn 90°
    clockwise to view); it is read as viewers show it: taller than wide, its top row the stored
    left column."""
    root = make_tree(tmp_path / "imgs", train=2, test=1)
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:, :8] = 255  # the stored left quarter is white: upright, the top quarter
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    path = root / "train" / "cat" / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    loaded = load_dataset(str(root))
    img, _ = loaded.train[loaded.train.files.index(str(path))]
    pixels = np.asarray(img).mean(axis=2)
    assert img.size == (16, 32)  # (width, height)
    assert pixels[:6].mean() > 240 and pixels[10:].mean() < 15


def test_float_and_32_bit_integer_images_are_refused_before_ray(tmp_path) -> None:
    from ftsweep.config.checks import check_job
    from ftsweep.data import unreadable_images
    from ftsweep.methods.ce import CEConfig

    root = make_tree(tmp_path / "imgs", train=2, test=1)
    floats = root / "train" / "dog" / "f.tif"
    ints = root / "test" / "owl" / "i.tif"
    Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)).save(floats)
    Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4) * 100_000).save(ints)
    bad = dict(unreadable_images(str(root)))
    assert sorted(bad) == sorted([str(floats), str(ints)])
    assert bad[str(floats)].startswith("32-bit float pixels (PIL mode F), whose range no file states")
    assert bad[str(ints)].startswith("32-bit integer pixels (PIL mode I)")
    fixed = {"dataset": str(root), "pretrained": "none", "labels_per_class": 1}
    with pytest.raises(ConfigError, match="save the images as 8- or 16-bit"):
        check_job(CEConfig, fixed, {})
    loaded = load_dataset(str(root))
    with pytest.raises(OSError, match=f"cannot read image {floats}: 32-bit float pixels"):
        loaded.train[loaded.train.files.index(str(floats))]


def test_one_folder_under_two_spellings_is_one_dataset(tmp_path, monkeypatch) -> None:
    """``./imgs``, ``imgs`` and its absolute path are one folder: three jobs of the same data
    pooled into one column before."""
    from ftsweep.config.spec import parse_spec

    make_tree(tmp_path / "imgs")
    make_tree(tmp_path / "other")
    monkeypatch.chdir(tmp_path)
    base = {"name": "t", "method": "ce", "pretrained": "none", "config": {"labels_per_class": 2}}
    for twice in (["./imgs", "imgs"], ["imgs", f"{tmp_path}/imgs/"]):
        with pytest.raises(
            ConfigError, match="must not repeat a dataset \\(an image folder counts once"
        ) as err:
            parse_spec({**base, "datasets": twice})
        assert err.value.field == "datasets"
    assert len(parse_spec({**base, "datasets": ["./imgs", "other"]}).jobs()) == 2
