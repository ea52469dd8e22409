"""Named view recipes (torchvision v2) and multi-view wrappers.

A *view* is a named augmentation recipe applied to a PIL image or a uint8 (C, H, W) tensor and
ending in a normalised float tensor of shape (3, S, S), S = ``info.image_size``:

- ``eval``: resize/centre-crop (large images) and normalise.
- ``standard`` / ``weak``: random crop (pad-4 crop for images ≤ 64 px, random-resized crop
  otherwise) and a horizontal flip when the dataset allows it (FixMatch's weak view).
- ``strong``: weak + RandAugment (2 ops, FixMatch's magnitude rule: drawn per image and op
  uniformly from {1, …, 10}, see :class:`SampledRandAugment`) + Cutout (FixMatch's strong view);
  ``strong_m10`` the same with torchvision's fixed ``RandAugment(2, magnitude=10)``.
- ``autoaugment``: weak + AutoAugment (SCHaNe's views).
- ``simclr``: random-resized crop (SimCLR's scale 0.08–1), flip, colour jitter (0.4, 0.4, 0.4,
  0.1: MoCo v2's strengths, SimCLR's CIFAR ones), grayscale (and blur for large images).
- ``byol1`` / ``byol2``: BYOL's two asymmetric views (blur 1.0/0.1, solarize 0/0.2).

Two ops are torchvision's with a cheaper kernel on the CPU, same parameters and random draws:
the Gaussian blur is separable (:class:`SeparableGaussianBlur`: two 1-D convolutions accumulated
in place, not one 2-D convolution per image), and the colour jitter's hue rotation on uint8
images is :func:`rotate_hue`'s closed form instead of an RGB → HSV → RGB round trip
(:class:`ColorJitter`; within one grey level of torchvision's, see :func:`adjust_hue_uint8`).
The batched forms of these recipes, for a GPU, are in :mod:`ftsweep.data.gpu_views`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ftsweep.data.registry import DatasetInfo

__all__ = [
    "SSL_CROP_SCALE",
    "VIEWS",
    "ColorJitter",
    "Cutout",
    "MultiView",
    "SampledRandAugment",
    "SeparableGaussianBlur",
    "adjust_hue_uint8",
    "blur_kernel_size",
    "build_view",
    "build_views",
    "rotate_hue",
    "separable_conv",
    "small_ssl_views",
]

SMALL_IMAGE = 64
#: random-resized crop scale of the ``simclr`` / ``byol1`` / ``byol2`` recipes at every size
#: (BYOL's and SimCLR's, also in their CIFAR settings; per image and batched on the device)
SSL_CROP_SCALE = (0.08, 1.0)


def small_ssl_views(info: DatasetInfo) -> bool:
    """Whether self-supervised pretraining on ``info`` draws the ``simclr`` / ``byol1`` /
    ``byol2`` recipes (per image or batched on the device) at 64 px or less: the data is not one
    of the embedded in-memory sets (``offline``: their batch views keep their own crop scale).
    Their crop scale there was (0.35, 1) before :data:`SSL_CROP_SCALE`, so the caches of stage 1
    and of ``pretrained: auto`` key these builds apart from the older ones."""
    return not info.offline and info.image_size <= SMALL_IMAGE


def blur_kernel_size(image_size: int) -> int:
    """SimCLR/BYOL's blur kernel: about a tenth of the image side, odd (23 at 224 px)."""
    return 2 * (image_size // 20) + 1


def separable_conv(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image with its own 1-D kernel along H, then along W (reflect padding).

    Args:
        x: float tensor with shape (B, C, H, W).
        kernels: tensor with shape (B, k), k odd.

    Returns:
        Tensor with shape (B, C, H, W). Each pass accumulates k shifted slices in place
        (``addcmul_``): on one CPU core this is faster than a grouped ``conv2d`` or ``conv1d``,
        and 2k instead of k² multiply-adds per pixel.
    """
    b, _, h, w = x.shape
    k = kernels.shape[1]
    r = k // 2
    y = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
    wk = kernels.to(x.dtype).view(b, k, 1, 1, 1).unbind(1)
    v = y[..., 0:h, :] * wk[0]
    for i in range(1, k):
        v.addcmul_(y[..., i : i + h, :], wk[i])
    out = v[..., 0:w] * wk[0]
    for i in range(1, k):
        out.addcmul_(v[..., i : i + w], wk[i])
    return out


#: the offsets n of the R, G and B channels in :func:`rotate_hue`'s formula, shape (3, 1, 1)
_HUE_OFFSETS = torch.tensor([5.0, 3.0, 1.0]).view(3, 1, 1)


def rotate_hue(x: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Rotate the HSV hue of RGB images by ``shift`` turns, keeping saturation and value.

    The closed form of torchvision's ``adjust_hue`` (RGB → HSV, ``h ← (h + shift) mod 1``,
    HSV → RGB): with M, m the largest and smallest channel, C = M − m and H ∈ [0, 6) the hue in
    sextants (the same tie order as torchvision: red, then green, then blue is the maximum),
    channel n ∈ {R: 5, G: 3, B: 1} becomes ``M − C · clamp(min(k, 4 − k), 0, 1)`` with
    ``k = (n + H + 6 · shift) mod 6``. About 25 elementwise ops and no gather, so ~5× faster on a
    CPU core; the result equals torchvision's up to float rounding (≈1e-6 of the pixel scale).

    Args:
        x: float tensor with shape (..., 3, H, W), non-negative, in any scale ([0, 1] or
            [0, 255]).
        shift: turns, in [-0.5, 0.5]: a float, or a tensor broadcastable to (..., H, W)
            (e.g. (B, 1, 1) for one shift per image of a batch).

    Returns:
        Tensor with the shape, dtype and scale of ``x``.
    """
    r, g, b = x.unbind(-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    return _rotate_hue(x, shift, maxc, chroma, r == maxc, g == maxc)


def _rotate_hue(
    x: torch.Tensor,
    shift: torch.Tensor | float,
    maxc: torch.Tensor,
    chroma: torch.Tensor,
    r_is_max: torch.Tensor,
    g_is_max: torch.Tensor,
) -> torch.Tensor:
    """:func:`rotate_hue` given the largest channel, the chroma and where red / green is the
    largest channel (each (..., H, W); :func:`adjust_hue_uint8` finds them on the uint8 image)."""
    r, g, b = x.unbind(-3)
    is_r = r_is_max.to(x.dtype)
    is_g = g_is_max.to(x.dtype).mul_(1.0 - is_r)
    is_b = 1.0 - is_r - is_g
    sextant = is_r * (g - b) + is_g * (b - r + 2.0 * chroma) + is_b * (r - g + 4.0 * chroma)
    sextant = sextant.div_(chroma.clamp(min=torch.finfo(x.dtype).tiny)).add_(6.0 * shift)
    k = sextant.unsqueeze(-3) + _HUE_OFFSETS.to(x.device, x.dtype)
    k = k.sub_(torch.floor(k * (1.0 / 6.0)).mul_(6.0))
    weight = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc.unsqueeze(-3) - chroma.unsqueeze(-3) * weight


def adjust_hue_uint8(img: torch.Tensor, hue_factor: float) -> torch.Tensor:
    """torchvision's ``adjust_hue`` of a uint8 RGB image (..., 3, H, W), via :func:`rotate_hue`.

    Converted back to uint8 as torchvision does (``⌊x · 255.999 / 255⌋``). The channels holding
    the maximum and minimum are exact; the middle one can differ by one grey level where
    torchvision's float rounding and ours fall on either side of a level: at most 1 level, on
    fewer than 1e-4 of the values over a grid of all colours (tests/data/test_transforms.py).
    """
    r, g, b = img.unbind(-3)
    max8 = torch.maximum(torch.maximum(r, g), b)
    maxc = max8.float()
    chroma = maxc - torch.minimum(torch.minimum(r, g), b).float()
    out = _rotate_hue(img.float(), hue_factor, maxc, chroma, r == max8, g == max8)
    return out.mul_(255.999 / 255.0).to(torch.uint8)


class ColorJitter(v2.ColorJitter):
    """torchvision's ``ColorJitter`` (same parameters, same random draws, same random order of
    the four ops) whose hue step on uint8 RGB images is :func:`adjust_hue_uint8`; brightness,
    contrast and saturation are torchvision's kernels, and other inputs go to torchvision's
    ``ColorJitter`` unchanged."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        image = type(inpt) is torch.Tensor or isinstance(inpt, tv_tensors.Image)
        if not (image and inpt.dtype == torch.uint8 and inpt.shape[-3] == 3):
            return super().transform(inpt, params)
        factors = [params[f"{name}_factor"] for name in ("brightness", "contrast", "saturation", "hue")]
        out = inpt
        for fn_id in params["fn_idx"].tolist():
            if factors[fn_id] is None:
                continue
            if fn_id == 3:
                hue = adjust_hue_uint8(out.as_subclass(torch.Tensor), factors[3])
                out = tv_tensors.wrap(hue, like=inpt) if isinstance(inpt, tv_tensors.Image) else hue
            else:
                out = _JITTER_KERNELS[fn_id](out, factors[fn_id])
        return out


#: torchvision's brightness, contrast and saturation kernels, in ColorJitter's op numbering
_JITTER_KERNELS = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation)


class SeparableGaussianBlur(torch.nn.Module):
    """Gaussian blur of one image (C, H, W) with σ ~ U(``sigma``) per call, as torchvision's
    ``GaussianBlur`` (same kernel, reflect padding, uint8 rounded), as two 1-D convolutions."""

    def __init__(self, kernel_size: int, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        super().__init__()
        self.kernel_size, self.sigma = kernel_size, sigma

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        sigma = torch.empty(1).uniform_(self.sigma[0], self.sigma[1]).item()
        k = self.kernel_size
        half = (k - 1) * 0.5
        t = torch.linspace(-half, half, k)
        kernel = torch.exp(-0.5 * (t / sigma) ** 2)
        kernel = kernel / kernel.sum()
        x = img.float() if img.dtype == torch.uint8 else img
        x = separable_conv(x.unsqueeze(0), kernel.unsqueeze(0))[0]
        if img.dtype == torch.uint8:
            x = x.round_().clamp_(0, 255).to(torch.uint8)
        return tv_tensors.wrap(x, like=img) if isinstance(img, tv_tensors.TVTensor) else x


class SampledRandAugment(torch.nn.Module):
    """RandAugment whose magnitude is drawn per image and per op (FixMatch's rule).

    Each of ``num_ops`` ops is torchvision's RandAugment op space (uniform, random sign for
    signed ops) at magnitude ``m ~ U{lo, …, hi}`` out of ``hi``, i.e. ``m/hi`` of the op's
    range (torchvision's ``RandAugment(num_ops=1, magnitude=m, num_magnitude_bins=hi + 1)``).
    """

    def __init__(self, num_ops: int = 2, magnitude: tuple[int, int] = (1, 10)) -> None:
        super().__init__()
        lo, hi = magnitude
        self.num_ops, self.lo = num_ops, lo
        self.ops = torch.nn.ModuleList(
            v2.RandAugment(num_ops=1, magnitude=m, num_magnitude_bins=hi + 1) for m in range(lo, hi + 1)
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        for _ in range(self.num_ops):
            img = self.ops[int(torch.randint(len(self.ops), ()))](img)
        return img


class Cutout(torch.nn.Module):
    """Zero a ``frac·S``-side square (after normalisation: the dataset's mean colour) centred at
    a uniform pixel and clipped at the borders, on every image: FixMatch's (its code's CTAugment
    ``cutout`` at level 1, ``1 + int(0.499·S)`` = 16 px at 32 px; the PyTorch port's
    ``CutoutAbs(img, 16)``), which fill grey instead."""

    def __init__(self, frac: float = 0.5) -> None:
        super().__init__()
        self.frac = frac

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        _, h, w = img.shape
        side = int(self.frac * min(h, w))
        if side == 0:
            return img
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, x0 = cy - side // 2, cx - side // 2
        img = img.clone()
        img[:, max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)] = 0.0
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
    if info.resize_size is not None:  # Core-tuning's code: resize 272 × 272, random 256 crop
        r = info.resize_size
        crop = [v2.Resize((r, r), antialias=True), v2.RandomCrop(s)]
    elif s <= SMALL_IMAGE:
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
    if s <= SMALL_IMAGE or info.resize_size is not None:  # the whole image (Core-tuning's CIFAR test view)
        return _start() + [v2.Resize((s, s), antialias=True)] + _finish(info)
    r = int(round(s / 0.875))
    side = (r, r) if info.eval_resize == "square" else r  # square: Core-tuning App. C.2
    return _start() + [v2.Resize(side, antialias=True), v2.CenterCrop(s)] + _finish(info)


def _weak(info: DatasetInfo) -> list:
    return _start() + _crop(info) + _finish(info)


def _strong(info: DatasetInfo, magnitude: int | None = None) -> list:
    """FixMatch's strong view; ``magnitude`` None = sampled per image and op (FixMatch's rule),
    an int = torchvision's fixed-magnitude RandAugment."""
    ra = SampledRandAugment(2) if magnitude is None else v2.RandAugment(num_ops=2, magnitude=magnitude)
    return _start() + _crop(info) + [ra] + _finish(info) + [Cutout(0.5)]


def _autoaugment(info: DatasetInfo) -> list:
    policy = v2.AutoAugmentPolicy.CIFAR10 if info.image_size <= SMALL_IMAGE else v2.AutoAugmentPolicy.IMAGENET
    return _start() + _crop(info) + [v2.AutoAugment(policy)] + _finish(info)


def _simclr_like(info: DatasetInfo, blur_p: float, solarize_p: float, jitter: tuple) -> list:
    s = info.image_size
    ops: list = [v2.RandomResizedCrop(s, scale=SSL_CROP_SCALE, antialias=True)]
    if info.hflip:
        ops.append(v2.RandomHorizontalFlip())
    if info.grayscale:
        ops.append(v2.RandomApply([ColorJitter(*jitter[:2])], p=0.8))
    else:
        ops += [v2.RandomApply([ColorJitter(*jitter)], p=0.8), v2.RandomGrayscale(p=0.2)]
    if s > SMALL_IMAGE and blur_p > 0:
        k = blur_kernel_size(s)
        ops.append(v2.RandomApply([SeparableGaussianBlur(k, sigma=(0.1, 2.0))], p=blur_p))
    if solarize_p > 0:
        ops.append(v2.RandomSolarize(128, p=solarize_p))
    return _start() + ops + _finish(info)


VIEWS: dict[str, Callable[[DatasetInfo], list]] = {
    "eval": _eval,
    "standard": _weak,
    "weak": _weak,
    "strong": _strong,
    "strong_m10": lambda info: _strong(info, 10),
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
