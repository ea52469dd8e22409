"""Named view recipes (torchvision v2) and multi-view wrappers.

A *view* is a named augmentation recipe applied to a PIL image or a uint8 (C, H, W) tensor and
ending in a normalised float tensor of shape (3, S, S), S = ``info.image_size``:

- ``eval``: resize/centre-crop (large images) and normalise.
- ``standard`` / ``weak``: random crop (pad-4 crop for images ≤ 64 px, random-resized crop
  otherwise) and a horizontal flip when the dataset allows it (FixMatch's weak view).
- ``strong``: weak + RandAugment(2, 10) + Cutout (FixMatch's strong view).
- ``autoaugment``: weak + AutoAugment (SCHaNe's views).
- ``simclr``: SimCLR's random-resized crop, flip, colour jitter, grayscale (and blur for large).
- ``byol1`` / ``byol2``: BYOL's two asymmetric views (blur 1.0/0.1, solarize 0/0.2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from ftsweep.data.registry import DatasetInfo

__all__ = ["VIEWS", "Cutout", "MultiView", "build_view", "build_views"]

SMALL_IMAGE = 64


class Cutout(torch.nn.Module):
    """Zero a random square of side ``U(0, max_frac)·S`` (after normalisation), as in FixMatch."""

    def __init__(self, max_frac: float = 0.5) -> None:
        super().__init__()
        self.max_frac = max_frac

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        _, h, w = img.shape
        side = int(torch.rand(()).item() * self.max_frac * min(h, w))
        if side == 0:
            return img
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(0, cy - side // 2), min(h, cy + side // 2 + 1)
        x0, x1 = max(0, cx - side // 2), min(w, cx + side // 2 + 1)
        img = img.clone()
        img[:, y0:y1, x0:x1] = 0.0
        return img


class MultiView:
    """Apply several view pipelines to one image and return a tuple of tensors."""

    def __init__(self, views: Sequence[Callable]) -> None:
        self.views = list(views)

    def __call__(self, img: object) -> tuple[torch.Tensor, ...]:
        return tuple(view(img) for view in self.views)


def _finish(info: DatasetInfo) -> list:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]


def _crop(info: DatasetInfo) -> list:
    s = info.image_size
    if s <= SMALL_IMAGE:
        crop = [
            v2.Resize((s, s), antialias=True),
            v2.RandomCrop(s, padding=s // 8, padding_mode="reflect"),
        ]
    else:
        crop = [v2.RandomResizedCrop(s, antialias=True)]
    return crop + ([v2.RandomHorizontalFlip()] if info.hflip else [])


def _start() -> list:
    return [v2.ToImage(), v2.RGB()]


def _eval(info: DatasetInfo) -> list:
    s = info.image_size
    resize = (
        [v2.Resize((s, s), antialias=True)]
        if s <= SMALL_IMAGE
        else [v2.Resize(int(round(s / 0.875)), antialias=True), v2.CenterCrop(s)]
    )
    return _start() + resize + _finish(info)


def _weak(info: DatasetInfo) -> list:
    return _start() + _crop(info) + _finish(info)


def _strong(info: DatasetInfo) -> list:
    return _start() + _crop(info) + [v2.RandAugment(num_ops=2, magnitude=10)] + _finish(info) + [Cutout(0.5)]


def _autoaugment(info: DatasetInfo) -> list:
    policy = v2.AutoAugmentPolicy.CIFAR10 if info.image_size <= SMALL_IMAGE else v2.AutoAugmentPolicy.IMAGENET
    return _start() + _crop(info) + [v2.AutoAugment(policy)] + _finish(info)


def _simclr_like(info: DatasetInfo, blur_p: float, solarize_p: float, jitter: tuple) -> list:
    s = info.image_size
    scale = (0.35, 1.0) if s <= SMALL_IMAGE else (0.08, 1.0)
    ops: list = [v2.RandomResizedCrop(s, scale=scale, antialias=True)]
    if info.hflip:
        ops.append(v2.RandomHorizontalFlip())
    if info.grayscale:
        ops.append(v2.RandomApply([v2.ColorJitter(*jitter[:2])], p=0.8))
    else:
        ops += [v2.RandomApply([v2.ColorJitter(*jitter)], p=0.8), v2.RandomGrayscale(p=0.2)]
    if s > SMALL_IMAGE and blur_p > 0:
        k = 2 * (s // 20) + 1
        ops.append(v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=blur_p))
    if solarize_p > 0:
        ops.append(v2.RandomSolarize(128, p=solarize_p))
    return _start() + ops + _finish(info)


VIEWS: dict[str, Callable[[DatasetInfo], list]] = {
    "eval": _eval,
    "standard": _weak,
    "weak": _weak,
    "strong": _strong,
    "autoaugment": _autoaugment,
    "simclr": lambda info: _simclr_like(info, 0.5, 0.0, (0.4, 0.4, 0.4, 0.1)),
    "byol1": lambda info: _simclr_like(info, 1.0, 0.0, (0.4, 0.4, 0.2, 0.1)),
    "byol2": lambda info: _simclr_like(info, 0.1, 0.2, (0.4, 0.4, 0.2, 0.1)),
}


def build_view(info: DatasetInfo, name: str) -> v2.Compose:
    """The pipeline of view ``name`` for dataset ``info``."""
    if name not in VIEWS:
        raise KeyError(f"unknown view {name!r}; known: {', '.join(VIEWS)}")
    return v2.Compose(VIEWS[name](info))


def build_views(info: DatasetInfo, names: str | Sequence[str]) -> Callable:
    """One pipeline for a single name, or a :class:`MultiView` for a sequence of names."""
    if isinstance(names, str):
        return build_view(info, names)
    return MultiView([build_view(info, n) for n in names])
