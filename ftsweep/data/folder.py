"""Image-folder datasets: ``dataset: ./my_images`` instead of a registered name.

A ``dataset`` value that contains ``/`` (``./my_images``, ``../data/birds``, ``/abs/path``), starts
with ``~`` or names an existing directory (and is not a registered name) is an ImageFolder-style
root::

    DIR/train/<class>/<image>     the train part (classes = sorted folder names of train/)
    DIR/test/<class>/<image>      the test part, the same classes
    DIR/val/<class>/<image>       optional; when present it is the validation split, else
                                  validation is carved from train by seed like every dataset

Images (``.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp``, case-insensitive; other files are
ignored) are decoded with PIL as RGB (:func:`to_rgb`: turned upright by their EXIF orientation;
16-bit grey images scaled over their full range, 0–65535, to 8 bits — PIL's own conversion clips
them at 255, so they came out nearly white —; 32-bit integer or float images, whose range no file
states, refused at validation); an image may sit in a subfolder of its class folder. Hidden
names (starting with ``.``) are skipped throughout: hidden class folders, hidden files such as
macOS ``._0.png`` resource forks and ``.DS_Store``, and everything inside a hidden subfolder. The
:class:`~ftsweep.data.DatasetInfo` is built from the folders (number of classes and images;
224-px crops, ImageNet mean/std and horizontal flips, the defaults of every large-image dataset)
so label budgets, subsampling and long-tail profiles work as on a registered dataset. A layout
that would fail later or mislead raises :class:`~ftsweep.config.ConfigError` on ``dataset``
naming the path and the expected layout:

* no ``train/`` or ``test/``;
* fewer than 2 class folders in ``train/`` (a 1-class classifier is meaningless);
* two parts that are the same directory (``test -> train``, ``val -> test`` symlinks), or two
  class folders that are (``test/cat -> ../train/cat``, ``train/kitty -> cat``): the test or
  validation images would be training images, or one class's images would carry two labels
  (folders are compared after resolving symlinks);
* a class folder without images;
* ``test/`` or ``val/`` classes that differ from ``train/``'s;
* an unreadable image (the first of every class of every part is opened at validation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ftsweep.config.errors import ConfigError
from ftsweep.data.registry import DATASETS, DatasetInfo, LoadedDataset

__all__ = [
    "DATASET_FIELDS",
    "IMAGE_EXTENSIONS",
    "ImageFiles",
    "folder_info",
    "is_folder_dataset",
    "to_rgb",
    "unreadable_images",
    "validate_dataset",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
PARTS = ("train", "test", "val")
FIELD = "dataset"
#: the config fields that name a dataset — a registered name or an image folder: the data, and
#: the pre-training data ``uot_selection`` reuses
DATASET_FIELDS = ("dataset", "source_dataset")


#: PIL modes of 16-bit grey pixels (PNG, TIFF): scaled to 8 bits over 0–65535 by :func:`to_rgb`
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
#: PIL modes of 32-bit integer and float pixels: no file states their range, so no scaling to
#: 8 bits is right for every dataset — refused (:func:`unreadable_images`)
UNSCALED_MODES = ("I", "F")


def to_rgb(img):  # noqa: ANN001, ANN201 — a PIL image in, a PIL RGB image out
    """``img`` as an 8-bit RGB PIL image, upright: turned as its EXIF orientation says (a phone's
    photo is stored sideways with a tag that viewers follow; PIL does not), then 16-bit grey
    (:data:`WIDE_MODES`) scaled by 255/65535; every mode through PIL's ``convert("RGB")``.

    Raises:
        OSError: a mode of :data:`UNSCALED_MODES`.
    """
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in UNSCALED_MODES:
        raise OSError(_unscaled(img.mode))
    if img.mode in WIDE_MODES:
        grey = np.asarray(img).astype(np.float32) * (255.0 / 65535.0)
        img = Image.fromarray(np.round(grey).astype(np.uint8), mode="L")
    return img.convert("RGB")


def _unscaled(mode: str) -> str:
    kind = "32-bit integer" if mode == "I" else "32-bit float"
    return f"{kind} pixels (PIL mode {mode}), whose range no file states; save the images as 8- or 16-bit"


def is_folder_dataset(name: str) -> bool:
    """True when ``name`` is read as an image-folder path rather than a registry key."""
    if name in DATASETS:
        return False
    return "/" in name or os.sep in name or name.startswith("~") or os.path.isdir(name)


def _layout(root: Path) -> str:
    return (
        f"expected an image-folder dataset {root}/train/<class>/<image> and {root}/test/<class>/<image> "
        f"(optional {root}/val/<class>/<image>), the same class folders in each"
    )


class ImageFiles(Dataset):
    """``(PIL RGB image, label)`` items from a list of files.

    Args:
        files: image paths.
        targets: int array with shape (len(files),).
    """

    def __init__(self, files: list[str], targets: np.ndarray) -> None:
        self.files = files
        self.targets = np.asarray(targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[object, int]:
        from PIL import Image

        path = self.files[i]
        try:
            with Image.open(path) as img:
                return to_rgb(img), int(self.targets[i])
        except OSError as err:
            raise OSError(f"cannot read image {path}: {err}") from err


@dataclass(frozen=True)
class _Part:
    files: list[str]
    targets: np.ndarray


def _hidden(name: str) -> bool:
    """A hidden file or folder (``.DS_Store``, ``._0.png``, ``.git``): never part of the data."""
    return name.startswith(".")


def _images(folder: Path) -> list[str]:
    """The image files under the class folder ``folder``, sorted; hidden files and hidden
    subfolders (with everything in them) are skipped, symlinked subfolders are not entered. A
    symlink whose target is missing (a volume not mounted) is listed, so that validation names
    it as unreadable rather than the class silently losing the image."""
    found = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for n in names:
            path = os.path.join(top, n)
            if _hidden(n) or os.path.splitext(n)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            if os.path.isfile(path) or (os.path.islink(path) and not os.path.exists(path)):
                found.append(path)
    return sorted(found)


def _scan_part(name: str, root: Path, part: str) -> tuple[list[str], _Part]:
    where = root / part
    classes = sorted(p.name for p in where.iterdir() if p.is_dir() and not _hidden(p.name))
    if not classes:
        raise ConfigError(FIELD, name, f"{where} has no class folders; {_layout(root)}")
    if part == "train" and len(classes) < 2:
        raise ConfigError(
            FIELD,
            name,
            f"{where} has 1 class folder ({classes[0]}); at least 2 class folders are needed "
            f"(a 1-class classifier is meaningless); {_layout(root)}",
        )
    files, targets = [], []
    for label, cls in enumerate(classes):
        found = _images(where / cls)
        if not found:
            raise ConfigError(
                FIELD,
                name,
                f"class folder {where / cls} holds no image ({', '.join(IMAGE_EXTENSIONS)}); {_layout(root)}",
            )
        _check_readable(name, found[0])
        files += found
        targets += [label] * len(found)
    return classes, _Part(files, np.asarray(targets, dtype=np.int64))


def _unreadable(path: str) -> str | None:
    """Why PIL cannot identify ``path`` from its header (None when it can): the reading that
    every file of a folder gets before Ray starts (no decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.width < 1 or img.height < 1:
                return f"size {img.width}×{img.height}"
            if img.mode in UNSCALED_MODES:
                return _unscaled(img.mode)
    except Exception as err:  # noqa: BLE001 — PIL raises UnidentifiedImageError, OSError, SyntaxError …
        return str(err) or type(err).__name__
    return None


def unreadable_images(name: str, workers: int = 8) -> list[tuple[str, str]]:
    """``(path, reason)`` of every image of the folder dataset ``name`` (all parts) whose header
    PIL cannot read, in file order; ``workers`` threads open the files. Only headers are read:
    a file cut short after a valid header is found when a trial decodes it.

    Raises:
        ConfigError: the folder's layout (:func:`folder_info`).
    """
    from concurrent.futures import ThreadPoolExecutor

    _, parts = _scan(name, _root(name))
    files = [f for part in parts.values() for f in part.files]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(_unreadable, files, chunksize=64))
    return [(f, r) for f, r in zip(files, reasons, strict=True) if r is not None]


def _check_readable(name: str, path: str) -> None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as err:  # noqa: BLE001 — PIL raises UnidentifiedImageError, OSError, SyntaxError …
        raise ConfigError(FIELD, name, f"image {path} cannot be read ({err})") from err


@lru_cache(maxsize=16)
def _scan(name: str, root: str) -> tuple[tuple[str, ...], dict[str, _Part]]:
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(FIELD, name, f"{base} is not a directory; {_layout(base)}")
    for part in ("train", "test"):
        if not (base / part).is_dir():
            raise ConfigError(FIELD, name, f"{base / part} does not exist; {_layout(base)}")
    _check_distinct(name, base, [base / p for p in PARTS if (base / p).is_dir()])
    classes, parts = {}, {}
    for part in PARTS:
        if (base / part).is_dir():
            classes[part], parts[part] = _scan_part(name, base, part)
    for part in ("test", "val"):
        if part in classes and classes[part] != classes["train"]:
            only_train = sorted(set(classes["train"]) - set(classes[part]))[:5]
            only_part = sorted(set(classes[part]) - set(classes["train"]))[:5]
            raise ConfigError(
                FIELD,
                name,
                f"{base / part} has classes {len(classes[part])} vs {len(classes['train'])} in {base / 'train'} "
                f"(only in train: {only_train}, only in {part}: {only_part}); {_layout(base)}",
            )
    _check_distinct(name, base, [base / p / c for p in PARTS if p in classes for c in classes[p]])
    return tuple(classes["train"]), parts


def _check_distinct(name: str, base: Path, folders: list[Path]) -> None:
    """Raise ``ConfigError`` when two of ``folders`` (parts, or class folders) resolve to the
    same directory (a symlink ``test -> train``): the test or validation set would be the train
    set, or one class's images would carry two labels."""
    seen: dict[Path, Path] = {}
    for folder in folders:
        real = folder.resolve()
        if real in seen:
            raise ConfigError(
                FIELD,
                name,
                f"{folder} is the same directory as {seen[real]} (both resolve to {real}); each part "
                f"and each class folder must be a directory of its own; {_layout(base)}",
            )
        seen[real] = folder


def _root(name: str) -> str:
    return str(Path(name).expanduser().resolve())


def folder_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of the image folder ``name`` (scanned once per process).

    Raises:
        ConfigError: on ``dataset``, naming the path and the expected layout.
    """
    classes, parts = _scan(name, _root(name))

    def load(root: str, download: bool) -> LoadedDataset:
        del root, download  # the folder is its own root; nothing to download
        return _load(name)

    return DatasetInfo(
        name=name,
        num_classes=len(classes),
        load=load,
        num_train=len(parts["train"].files),
        num_test=len(parts["test"].files),
        description=f"image folder {_root(name)} ({len(classes)} classes"
        + (", own val/)" if "val" in parts else ")"),
    )


def _load(name: str) -> LoadedDataset:
    classes, parts = _scan(name, _root(name))
    ds = {p: ImageFiles(part.files, part.targets) for p, part in parts.items()}
    val = ds.get("val")
    return LoadedDataset(
        train=ds["train"],
        test=ds["test"],
        train_targets=parts["train"].targets,
        test_targets=parts["test"].targets,
        class_names=classes,
        val=val,
        val_targets=None if val is None else parts["val"].targets,
    )


def validate_dataset(name: str, field: str = FIELD) -> None:
    """Raise ``ConfigError`` on ``field`` unless ``name`` is a registered dataset or a valid image
    folder (see the module docstring)."""
    if name in DATASETS:
        return
    if is_folder_dataset(name):
        try:
            folder_info(name)
        except ConfigError as err:
            raise ConfigError(field, err.value, err.allowed) from None
        return
    raise ConfigError(
        field,
        name,
        f"must be one of {', '.join(sorted(DATASETS))}, or an image-folder path such as ./my_images "
        "(train/<class>/<image>, test/<class>/<image>)",
    )
