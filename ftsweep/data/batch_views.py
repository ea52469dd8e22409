"""Batched SimCLR-style views for in-memory uint8 image tensors (one kernel call per batch).

Per-sample torchvision pipelines cost ~0.5 ms per image in Python overhead; for the embedded
digits pool (and any :class:`~ftsweep.data.digits.TensorImageDataset`) the same augmentation
family is drawn per sample but applied to the whole batch at once with ``affine_grid`` /
``grid_sample``: random-resized crop (area ``scale``, aspect ratio in [3/4, 4/3]), optional
horizontal flip, and, with probability ``jitter_p``, brightness and contrast jitter.
:func:`batch_byol_view` adds BYOL's solarisation on top (stage-1 target pretraining).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ftsweep.data.registry import DatasetInfo

__all__ = ["batch_byol_view", "batch_simclr_view"]


def batch_simclr_view(
    images: torch.Tensor,
    info: DatasetInfo,
    *,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.35, 1.0),
    jitter: float = 0.4,
    jitter_p: float = 0.8,
) -> torch.Tensor:
    """One random view of each image.

    Args:
        images: uint8 tensor with shape (B, C, H, W).
        info: gives ``hflip``, ``mean``, ``std`` and the output side S = ``image_size``.
        generator: source of randomness (on the images' device).

    Returns:
        Normalised float tensor with shape (B, C, S, S).
    """
    b, c = images.shape[:2]
    size = info.image_size
    dev = images.device
    x = images.float() / 255.0

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, device=dev, generator=generator)

    area = u(*scale)
    log_r = u(math.log(3 / 4), math.log(4 / 3))
    sw = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    sh = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    tx = (1 - sw) * u(-1.0, 1.0)
    ty = (1 - sh) * u(-1.0, 1.0)
    flip = torch.ones(b, device=dev)
    if info.hflip:
        flip = torch.where(torch.rand(b, device=dev, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = sw * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sh, ty
    grid = F.affine_grid(theta, (b, c, size, size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    apply = (torch.rand(b, device=dev, generator=generator) < jitter_p).float().view(b, 1, 1, 1)
    bright = u(1 - jitter, 1 + jitter).view(b, 1, 1, 1)
    contrast = u(1 - jitter, 1 + jitter).view(b, 1, 1, 1)
    jittered = (x * bright).clamp(0, 1)
    mean = jittered.mean(dim=(1, 2, 3), keepdim=True)
    jittered = ((jittered - mean) * contrast + mean).clamp(0, 1)
    x = apply * jittered + (1 - apply) * x
    m = torch.tensor(info.mean, device=dev).view(1, c, 1, 1)
    s = torch.tensor(info.std, device=dev).view(1, c, 1, 1)
    return (x - m) / s


def batch_byol_view(
    images: torch.Tensor,
    info: DatasetInfo,
    *,
    solarize_p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Batched BYOL view of in-memory uint8 images: :func:`batch_simclr_view` (random-resized
    crop, flip when allowed, brightness/contrast jitter with p = 0.8) then solarisation
    (x → 1 − x for x ≥ 0.5) with probability ``solarize_p`` per image (BYOL: 0 for the first
    view, 0.2 for the second). Blur is skipped (BYOL blurs only large images here too, see the
    ``byol1``/``byol2`` recipes), as are hue/saturation/grayscale (``batch_simclr_view`` has
    none; the embedded data set is grayscale).

    Args:
        images: uint8 tensor with shape (B, C, H, W).
        info: gives ``hflip``, ``mean`` and ``std``.
        solarize_p: probability of solarising an image.
        generator: source of randomness.

    Returns:
        Normalised float tensor with shape (B, C, H, W).
    """
    x = batch_simclr_view(images, info, generator=generator)
    if solarize_p <= 0:
        return x
    b, c = x.shape[:2]
    m = torch.tensor(info.mean, device=x.device).view(1, c, 1, 1)
    s = torch.tensor(info.std, device=x.device).view(1, c, 1, 1)
    raw = x * s + m
    sol = torch.where(raw >= 0.5, 1.0 - raw, raw)
    apply = (torch.rand(b, device=x.device, generator=generator) < solarize_p).view(b, 1, 1, 1)
    return (torch.where(apply, sol, raw) - m) / s
