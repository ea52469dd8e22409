"""Batched view recipes with per-sample random parameters, for the trial's device (GPU or CPU).

The per-image recipes of :mod:`ftsweep.data.transforms` draw every random parameter per image
in a DataLoader worker. Here the CPU workers only decode and resize each image to a fixed
``prepare_size`` (uint8, :func:`prepare_transform`), and the training device draws the views of a
whole batch at once — every random parameter still per sample:

- crops: random-resized crop (torchvision's rejection sampling of area and log-aspect, 10
  tries then the whole image) resampled with ``roi_align`` (adaptive, i.e. area-averaged, when
  shrinking), or the pad-``S/8`` reflect crop for images ≤ 64 px; horizontal flips;
- colour jitter in a random order per sample (brightness, contrast, saturation, hue),
  grayscale, separable Gaussian blur (two 1-D passes) (kernel ``2·⌊S/20⌋ + 1``, σ ~ U(0.1, 2)), solarize;
- RandAugment (2 ops, each op and its magnitude per sample) and AutoAugment (a sub-policy per
  sample), by grouping the samples of a batch by op: each op runs once per batch on the
  samples that drew it, with their own magnitudes;
- Cutout after normalisation.

A batch's randomness comes from one generator on the device seeded from the batch's item seeds
(:func:`ftsweep.engine.make_loader` gives every item one), so the same seeds give the same
views on the same device type. Pixels are float in [0, 1] throughout (the per-image path works
on uint8 and rounds after each op), so the two paths agree in distribution, not bit for bit.

Deviation from the per-image path: ``prepare_size`` squashes an image to a square before the
crop (``round(S / 0.875)``, 256 for S = 224; S for small images, where the per-image recipe
also resizes to S × S first), so a random-resized crop's aspect range applies to the squashed
image, and the eval view is not drawn here (it stays on the CPU, unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.ops import roi_align
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ftsweep.data.registry import DatasetInfo
from ftsweep.data.transforms import SMALL_IMAGE, SSL_CROP_SCALE, blur_kernel_size, rotate_hue, separable_conv

__all__ = [
    "AUTOAUGMENT_POLICIES",
    "BATCH_VIEWS",
    "PREPARED_TAG",
    "BatchView",
    "DeviceBatches",
    "DeviceViewDataset",
    "build_batch_view",
    "device_view_stream",
    "prepare_size",
    "prepare_transform",
    "random_crop",
    "random_resized_crop",
    "random_resized_crop_boxes",
    "use_device_views",
]

#: marks a prepared item (``x, y, index, seed, tag``) whose views the device draws
PREPARED_TAG = "ftsweep.gpu_views"

_GRAY = (0.2989, 0.587, 0.114)


def prepare_size(info: DatasetInfo) -> int:
    """Side of the uint8 square the CPU workers produce: ``resize_size`` when set, else S for small
    images, else round(S/0.875)."""
    s = info.image_size
    if info.resize_size is not None:
        return info.resize_size
    return s if s <= SMALL_IMAGE else int(round(s / 0.875))


def prepare_transform(info: DatasetInfo) -> v2.Compose:
    """Decode to an RGB uint8 tensor and resize to ``prepare_size`` × ``prepare_size``."""
    r = prepare_size(info)
    return v2.Compose([v2.ToImage(), v2.RGB(), v2.Resize((r, r), antialias=True)])


# ---- random draws ---------------------------------------------------------------------------
def _u(g: torch.Generator, n: int, lo: float, hi: float, dev: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=dev)


def _coin(g: torch.Generator, n: int, p: float, dev: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=dev) < p


def _bshape(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


# ---- geometry -------------------------------------------------------------------------------
def random_resized_crop_boxes(
    b: int,
    h: int,
    w: int,
    g: torch.Generator,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    tries: int = 10,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """torchvision's ``RandomResizedCrop.get_params`` for ``b`` samples at once: up to ``tries``
    draws of area ``U(scale)·H·W`` and log-aspect ``U(log ratio)``, the first that fits, else the
    whole image (a square image's ratio is inside ``ratio``); a uniform integer position.

    Returns:
        Float tensor with shape (b, 4): ``(x0, y0, x1, y1)`` in pixels (x1 − x0 = crop width).
    """
    area = h * w
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(b, tries, generator=g, device=device))
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(lo + (hi - lo) * torch.rand(b, tries, generator=g, device=device))
    cw = torch.sqrt(target * aspect).round()
    ch = torch.sqrt(target / aspect).round()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.float().argmax(1, keepdim=True)
    found = ok.any(1)
    cw = torch.where(found, cw.gather(1, first).squeeze(1), torch.full_like(cw[:, 0], w))
    ch = torch.where(found, ch.gather(1, first).squeeze(1), torch.full_like(ch[:, 0], h))
    i = torch.floor(torch.rand(b, generator=g, device=device) * (h - ch + 1)).clamp(max=h - ch)
    j = torch.floor(torch.rand(b, generator=g, device=device) * (w - cw + 1)).clamp(max=w - cw)
    return torch.stack([j, i, j + cw, i + ch], dim=1)


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    g: torch.Generator,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """Random-resized crop per sample (:func:`random_resized_crop_boxes`), resampled to
    ``size``² by ``roi_align`` (bilinear; area-averaged when shrinking).

    Args:
        x: float tensor with shape (B, C, H, W).

    Returns:
        Tensor with shape (B, C, size, size).
    """
    b, _, h, w = x.shape
    boxes = random_resized_crop_boxes(b, h, w, g, scale=scale, ratio=ratio, device=x.device).to(x.dtype)
    rois = torch.cat([torch.arange(b, device=x.device, dtype=x.dtype)[:, None], boxes], dim=1)
    return roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def pad_random_crop(x: torch.Tensor, g: torch.Generator, *, pad: int) -> torch.Tensor:
    """Reflect-pad by ``pad`` and crop back to (H, W) at a random offset per sample."""
    b, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=dev)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=dev)
    rows = (oy[:, None] + torch.arange(h, device=dev)).view(b, 1, h, 1).expand(b, c, h, w + 2 * pad)
    out = xp.gather(2, rows)
    cols = (ox[:, None] + torch.arange(w, device=dev)).view(b, 1, 1, w).expand(b, c, h, w)
    return out.gather(3, cols)


def random_crop(x: torch.Tensor, g: torch.Generator, *, size: int) -> torch.Tensor:
    """A ``size`` × ``size`` crop at a random offset per sample (torchvision's ``RandomCrop``)."""
    b, c, h, w = x.shape
    dev = x.device
    oy = torch.randint(0, h - size + 1, (b,), generator=g, device=dev)
    ox = torch.randint(0, w - size + 1, (b,), generator=g, device=dev)
    rows = (oy[:, None] + torch.arange(size, device=dev)).view(b, 1, size, 1).expand(b, c, size, w)
    cols = (ox[:, None] + torch.arange(size, device=dev)).view(b, 1, 1, size).expand(b, c, size, size)
    return x.gather(2, rows).gather(3, cols)


def random_hflip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    return torch.where(_bshape(_coin(g, len(x), p, x.device)), x.flip(-1), x)


def _affine_nearest(x: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at ``inv @ (u, v, 1)`` for every output pixel centre (pixel coordinates),
    nearest neighbour, zero fill. ``inv``: (B, 2, 3)."""
    b, c, h, w = x.shape
    dev = x.device
    ys, xs = torch.meshgrid(
        torch.arange(h, device=dev, dtype=x.dtype), torch.arange(w, device=dev, dtype=x.dtype), indexing="ij"
    )
    pts = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, h * w, 3)
    src = pts @ inv.transpose(1, 2)  # (B, HW, 2)
    gx = (2 * src[..., 0] + 1) / w - 1
    gy = (2 * src[..., 1] + 1) / h - 1
    grid = torch.stack([gx, gy], dim=-1).view(b, h, w, 2)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


# ---- colour ---------------------------------------------------------------------------------
def _gray(x: torch.Tensor) -> torch.Tensor:
    r, gch, bch = x.unbind(-3)
    return (_GRAY[0] * r + _GRAY[1] * gch + _GRAY[2] * bch).unsqueeze(-3)


def _blend(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    f = _bshape(f)
    return (f * a + (1 - f) * b).clamp(0, 1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * _bshape(f)).clamp(0, 1)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x).mean(dim=(-3, -2, -1), keepdim=True), f)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x), f)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of each sample by ``shift`` (B,) (fraction of a turn, in [-0.5, 0.5]):
    torchvision's ``adjust_hue`` in closed form (:func:`~ftsweep.data.transforms.rotate_hue`)."""
    return rotate_hue(x, shift.view(-1, 1, 1).to(x.dtype))


def color_jitter(
    x: torch.Tensor,
    g: torch.Generator,
    *,
    strength: Sequence[float],
    p: float,
) -> torch.Tensor:
    """``RandomApply([ColorJitter(*strength)], p)`` per sample, with ColorJitter's random order of
    its (up to four) ops drawn per sample. ``strength``: (brightness, contrast[, saturation, hue])."""
    b, dev = len(x), x.device
    n_ops = len(strength)
    apply = _coin(g, b, p, dev)
    order = torch.argsort(torch.rand(b, n_ops, generator=g, device=dev), dim=1)
    factors = []
    for k, s in enumerate(strength):
        lo, hi = (-s, s) if k == 3 else (max(0.0, 1 - s), 1 + s)
        factors.append(_u(g, b, lo, hi, dev))
    ops: list[Callable] = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
    x = x.clone()
    for pos in range(n_ops):
        for k in range(n_ops):
            m = apply & (order[:, pos] == k)
            if m.any():
                x[m] = ops[k](x[m], factors[k][m])
    return x


def random_grayscale(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    m = _bshape(_coin(g, len(x), p, x.device))
    return torch.where(m, _gray(x).expand_as(x), x)


def gaussian_kernels(sigma: torch.Tensor, k: int) -> torch.Tensor:
    """1-D Gaussian kernels (torchvision's), shape (B, k), for per-sample ``sigma`` (B,)."""
    half = (k - 1) * 0.5
    t = torch.linspace(-half, half, k, device=sigma.device, dtype=sigma.dtype)
    pdf = torch.exp(-0.5 * (t[None, :] / sigma[:, None]) ** 2)
    return pdf / pdf.sum(dim=1, keepdim=True)


def random_blur(x: torch.Tensor, g: torch.Generator, *, p: float, k: int) -> torch.Tensor:
    b, dev = len(x), x.device
    apply = _coin(g, b, p, dev)
    sigma = _u(g, b, 0.1, 2.0, dev)
    if not apply.any():
        return x
    x = x.clone()
    x[apply] = separable_conv(x[apply], gaussian_kernels(sigma[apply].to(x.dtype), k))
    return x


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= _bshape(threshold), 1.0 - x, x)


def random_solarize(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    m = _bshape(_coin(g, len(x), p, x.device))
    return torch.where(m, solarize(x, torch.full((len(x),), 128 / 255, device=x.device)), x)


def cutout(x: torch.Tensor, g: torch.Generator, *, frac: float = 0.5) -> torch.Tensor:
    """:class:`~ftsweep.data.transforms.Cutout` per sample: zero a square of side
    ``⌊frac·min(H, W)⌋`` centred at a uniform pixel (clipped at the borders)."""
    b, _, h, w = x.shape
    dev = x.device
    side = int(frac * min(h, w))
    if side == 0:
        return x
    y0 = torch.randint(0, h, (b,), generator=g, device=dev) - side // 2
    x0 = torch.randint(0, w, (b,), generator=g, device=dev) - side // 2
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_y = (ar_h[None] >= y0[:, None]) & (ar_h[None] < (y0 + side)[:, None])
    in_x = (ar_w[None] >= x0[:, None]) & (ar_w[None] < (x0 + side)[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)


# ---- RandAugment / AutoAugment ops ----------------------------------------------------------
#: op names; a value per sample in the op's own units (shear, pixels, degrees, enhance delta,
#: bits, threshold)
OPS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
    "Invert",
)
#: the ops whose magnitude takes a random sign: the geometric and the enhance ones (ShearX … Sharpness)
_SIGNED = frozenset(OPS[OPS.index("ShearX") : OPS.index("Sharpness") + 1])
#: RandAugment's op space (torchvision's, uniform over these 14)
RANDAUGMENT_OPS = OPS[:-1]


def _op_value(name: str, frac: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's magnitude of op ``name`` at ``frac`` ∈ [0, 1] of its range (unsigned)."""
    if name in ("ShearX", "ShearY"):
        return 0.3 * frac
    if name in ("TranslateX", "TranslateY"):
        return 150.0 / 331.0 * size * frac
    if name == "Rotate":
        return 30.0 * frac
    if name in ("Brightness", "Color", "Contrast", "Sharpness"):
        return 0.9 * frac
    if name == "Posterize":
        return 8 - torch.round(4 * frac)
    if name == "Solarize":
        return 1.0 - frac
    return torch.zeros_like(frac)


def _sharpness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=x.device, dtype=x.dtype) / 13
    blurred = F.conv2d(x, k.expand(c, 1, 3, 3), groups=c).clamp(0, 1)
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = blurred
    return _blend(x, degenerate, f)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    eq = hi == lo
    lo = torch.where(eq, torch.zeros_like(lo), lo)
    hi = torch.where(eq, torch.ones_like(hi), hi)
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def _posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    q = _bshape(torch.pow(2.0, 8 - bits))
    return torch.floor(torch.round(x * 255) / q) * q / 255


def _geometric(name: str, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    inv = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    inv[:, 0, 0] = inv[:, 1, 1] = 1.0
    if name == "ShearX":  # centre (0, 0), as torchvision's RandAugment
        inv[:, 0, 1] = v
    elif name == "ShearY":
        inv[:, 1, 0] = v
    elif name == "TranslateX":
        inv[:, 0, 2] = -v
    elif name == "TranslateY":
        inv[:, 1, 2] = -v
    else:  # Rotate about the image centre
        a = torch.deg2rad(v)
        cos, sin = torch.cos(a), torch.sin(a)
        cx, cy = (w - 1) * 0.5, (h - 1) * 0.5
        inv[:, 0, 0], inv[:, 0, 1] = cos, -sin
        inv[:, 1, 0], inv[:, 1, 1] = sin, cos
        inv[:, 0, 2] = cx - cos * cx + sin * cy
        inv[:, 1, 2] = cy - sin * cx - cos * cy
    return _affine_nearest(x, inv)


def apply_op(name: str, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Op ``name`` on every sample of ``x`` (B, C, H, W) with per-sample values ``v`` (B,)."""
    if name == "Identity":
        return x
    if name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"):
        return _geometric(name, x, v)
    if name == "Brightness":
        return adjust_brightness(x, 1 + v)
    if name == "Color":
        return adjust_saturation(x, 1 + v)
    if name == "Contrast":
        return adjust_contrast(x, 1 + v)
    if name == "Sharpness":
        return _sharpness(x, 1 + v)
    if name == "Posterize":
        return _posterize(x, v)
    if name == "Solarize":
        return solarize(x, v)
    if name == "AutoContrast":
        return _autocontrast(x)
    if name == "Equalize":
        return TF.equalize(x)
    if name == "Invert":
        return 1.0 - x
    raise KeyError(name)


def _apply_grouped(
    x: torch.Tensor, op: torch.Tensor, value: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """Each active sample gets op ``OPS[op[i]]`` with value ``value[i]``: one call per op present."""
    x = x.clone()
    for k, name in enumerate(OPS):
        m = active & (op == k)
        if name != "Identity" and m.any():
            x[m] = apply_op(name, x[m], value[m])
    return x


def _signed(g: torch.Generator, op: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    signed = torch.tensor([n in _SIGNED for n in OPS], device=op.device)[op]
    flip = torch.rand(len(op), generator=g, device=op.device) < 0.5
    return torch.where(signed & flip, -value, value)


def _values(op: torch.Tensor, frac: torch.Tensor, size: int) -> torch.Tensor:
    out = torch.zeros_like(frac)
    for k, name in enumerate(OPS):
        m = op == k
        if m.any():
            out[m] = _op_value(name, frac[m], size)
    return out


def rand_augment(
    x: torch.Tensor, g: torch.Generator, *, num_ops: int = 2, magnitude: int | None = None
) -> torch.Tensor:
    """RandAugment with the op drawn per sample and per op slot (uniform over
    :data:`RANDAUGMENT_OPS`, torchvision's space), a random sign for signed ops.

    Args:
        magnitude: None = FixMatch's rule, an integer magnitude drawn per sample and op slot
            uniformly from {1, …, 10}, i.e. ``m/10`` of each op's range; an int = torchvision's
            fixed ``RandAugment(magnitude=m)`` (``m/30`` of the range, 31 bins).
    """
    b, dev = len(x), x.device
    size = x.shape[-1]
    for _ in range(num_ops):
        op = torch.randint(0, len(RANDAUGMENT_OPS), (b,), generator=g, device=dev)
        if magnitude is None:
            frac = torch.randint(1, 11, (b,), generator=g, device=dev).to(x.dtype) / 10
        else:
            frac = torch.full((b,), magnitude / 30, device=dev, dtype=x.dtype)
        value = _signed(g, op, _values(op, frac, size))
        x = _apply_grouped(x, op, value, torch.ones(b, dtype=torch.bool, device=dev))
    return x


def _policy(rows: Sequence[tuple]) -> tuple[tuple[tuple[str, float, int | None], ...], ...]:
    return tuple(tuple(sub) for sub in rows)


#: AutoAugment's learned policies (Cubuk et al. 2019, as torchvision's ``AutoAugmentPolicy``):
#: 25 sub-policies of two (op, probability, magnitude bin of 10)
AUTOAUGMENT_POLICIES: dict[str, tuple] = {
    "imagenet": _policy(
        [
            (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
            (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
            (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
            (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
            (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
            (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
            (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
            (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
            (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
            (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
            (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
            (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
            (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
            (("Invert", 0.6, None), ("Equalize", 1.0, None)),
            (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
            (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
            (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
            (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
            (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
            (("Color", 0.4, 0), ("Equalize", 0.6, None)),
            (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
            (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
            (("Invert", 0.6, None), ("Equalize", 1.0, None)),
            (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
            (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        ]
    ),
    "cifar10": _policy(
        [
            (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
            (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
            (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
            (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
            (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
            (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
            (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
            (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
            (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
            (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
            (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
            (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
            (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
            (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
            (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
            (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
            (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
            (("Color", 0.9, 9), ("Equalize", 0.6, None)),
            (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
            (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
            (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
            (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
            (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
            (("Equalize", 0.8, None), ("Invert", 0.1, None)),
            (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
        ]
    ),
}


def auto_augment(x: torch.Tensor, g: torch.Generator, *, policy: str) -> torch.Tensor:
    """AutoAugment with the sub-policy drawn per sample; each of its two ops applied with its
    probability at its magnitude bin (``bin/9`` of the op's range, torchvision's 10 bins),
    signed ops with a random sign."""
    table = AUTOAUGMENT_POLICIES[policy]
    b, dev = len(x), x.device
    size = x.shape[-1]
    sub = torch.randint(0, len(table), (b,), generator=g, device=dev)
    for slot in range(2):
        op_t = torch.tensor([OPS.index(t[slot][0]) for t in table], device=dev)
        p_t = torch.tensor([t[slot][1] for t in table], device=dev, dtype=x.dtype)
        m_t = torch.tensor([(t[slot][2] or 0) / 9 for t in table], device=dev, dtype=x.dtype)
        op = op_t[sub]
        active = torch.rand(b, generator=g, device=dev) < p_t[sub]
        value = _signed(g, op, _values(op, m_t[sub], size))
        x = _apply_grouped(x, op, value, active)
    return x


# ---- recipes --------------------------------------------------------------------------------
def _normalize(x: torch.Tensor, info: DatasetInfo) -> torch.Tensor:
    m = torch.tensor(info.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(info.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def _center(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if x.shape[-1] == size and x.shape[-2] == size else TF.center_crop(x, [size, size])


def _crop_flip(x: torch.Tensor, info: DatasetInfo, g: torch.Generator) -> torch.Tensor:
    s = info.image_size
    if info.resize_size is not None:
        x = random_crop(x, g, size=s)
    elif s <= SMALL_IMAGE:
        x = pad_random_crop(x, g, pad=s // 8)
    else:
        x = random_resized_crop(x, s, g)
    return random_hflip(x, g) if info.hflip else x


def _eval_view(x: torch.Tensor, info: DatasetInfo, g: torch.Generator) -> torch.Tensor:
    if info.resize_size is not None:  # the whole image at S × S, as the per-image eval view
        s = info.image_size
        x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
    return _normalize(_center(x, info.image_size), info)


def _weak_view(x: torch.Tensor, info: DatasetInfo, g: torch.Generator) -> torch.Tensor:
    return _normalize(_crop_flip(x, info, g), info)


def _strong_view(magnitude: int | None) -> Callable:
    def view(x: torch.Tensor, info: DatasetInfo, g: torch.Generator) -> torch.Tensor:
        x = rand_augment(_crop_flip(x, info, g), g, num_ops=2, magnitude=magnitude)
        return cutout(_normalize(x, info), g, frac=0.5)

    return view


def _autoaugment_view(x: torch.Tensor, info: DatasetInfo, g: torch.Generator) -> torch.Tensor:
    policy = "cifar10" if info.image_size <= SMALL_IMAGE else "imagenet"
    return _normalize(auto_augment(_crop_flip(x, info, g), g, policy=policy), info)


def _simclr_like(blur_p: float, solarize_p: float, jitter: tuple) -> Callable:
    def view(x: torch.Tensor, info: DatasetInfo, g: torch.Generator) -> torch.Tensor:
        s = info.image_size
        x = random_resized_crop(x, s, g, scale=SSL_CROP_SCALE)
        if info.hflip:
            x = random_hflip(x, g)
        if info.grayscale:
            x = color_jitter(x, g, strength=jitter[:2], p=0.8)
        else:
            x = random_grayscale(color_jitter(x, g, strength=jitter, p=0.8), g, 0.2)
        if s > SMALL_IMAGE and blur_p > 0:
            x = random_blur(x, g, p=blur_p, k=blur_kernel_size(s))
        if solarize_p > 0:
            x = random_solarize(x, g, solarize_p)
        return _normalize(x, info)

    return view


#: the batched form of every recipe of ``ftsweep.data.transforms.VIEWS``
BATCH_VIEWS: dict[str, Callable[[torch.Tensor, DatasetInfo, torch.Generator], torch.Tensor]] = {
    "eval": _eval_view,
    "standard": _weak_view,
    "weak": _weak_view,
    "strong": _strong_view(None),
    "strong_m10": _strong_view(10),
    "autoaugment": _autoaugment_view,
    "simclr": _simclr_like(0.5, 0.0, (0.4, 0.4, 0.4, 0.1)),
    "byol1": _simclr_like(1.0, 0.0, (0.4, 0.4, 0.2, 0.1)),
    "byol2": _simclr_like(0.1, 0.2, (0.4, 0.4, 0.2, 0.1)),
}


class BatchView:
    """View recipe ``name`` (or a tuple of names: one independent view each) of a batch.

    Args:
        info: the dataset's facts (crop side ``image_size``, ``hflip``, ``grayscale``, mean/std).
        names: a key of :data:`BATCH_VIEWS` or a sequence of them.
        memory_format: of the returned tensors (``torch.channels_last`` for conv nets on CUDA).
    """

    def __init__(
        self,
        info: DatasetInfo,
        names: str | Sequence[str],
        *,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        for n in [names] if isinstance(names, str) else names:
            if n not in BATCH_VIEWS:
                raise KeyError(f"unknown view {n!r}; known: {', '.join(BATCH_VIEWS)}")
        self.info, self.names, self.memory_format = info, names, memory_format

    def __call__(
        self, images: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Views of ``images``: uint8 (or float in [0, 1]) tensor with shape (B, 3, R, R) on the
        device the views are drawn on. Returns normalised float (B, 3, S, S), or a tuple."""
        if generator is None:
            generator = torch.Generator(device=images.device)
            generator.manual_seed(0 if seed is None else seed)
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()

        def one(name: str) -> torch.Tensor:
            out = BATCH_VIEWS[name](x, self.info, generator)
            return out.contiguous(memory_format=self.memory_format)

        if isinstance(self.names, str):
            return one(self.names)
        return tuple(one(n) for n in self.names)


def build_batch_view(info: DatasetInfo, names: str | Sequence[str], **kwargs: object) -> BatchView:
    """The batched form of view ``names`` for ``info`` (see :class:`BatchView`)."""
    return BatchView(info, names, **kwargs)  # type: ignore[arg-type]


class DeviceViewDataset(Dataset):
    """Items ``(prepared_uint8, y, index, seed, tag)`` of a view dataset whose views the device
    draws: ``base`` is read through :func:`prepare_transform`, ``seed`` comes from torch's RNG
    (seeded per item by ``make_loader``) and ``tag`` names the stream for :class:`DeviceBatches`.

    Args:
        base: a :class:`~ftsweep.data.ViewDataset` already holding the prepare transform.
        stream: the key of this stream's :class:`BatchView` in :class:`DeviceBatches`.
    """

    def __init__(self, base: Dataset, stream: str) -> None:
        self.base, self.stream = base, stream
        self.tag = f"{PREPARED_TAG}:{stream}"

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:  # indices, hide_labels, … of the view dataset
        if name in ("base", "stream", "tag"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int, int, str]:
        x, y, index = self.base[i]
        return x, y, index, int(torch.randint(2**62, ())), self.tag


def use_device_views(setting: bool | str, device: torch.device | str) -> bool:
    """``gpu_augment``: ``auto`` → on for a CUDA device; a bool as it is."""
    if setting == "auto":
        return torch.device(device).type == "cuda"
    return bool(setting)


def device_view_stream(
    dataset: Dataset,
    info: DatasetInfo,
    names: str | Sequence[str],
    stream: str,
    *,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[DeviceViewDataset, BatchView]:
    """One training stream moved onto the device views: ``dataset`` (a
    :class:`~ftsweep.data.ViewDataset`) read through :func:`prepare_transform` instead of its
    per-image views, and the :class:`BatchView` of ``names`` that :class:`DeviceBatches` draws
    for it under the key ``stream``."""
    from ftsweep.data import ViewDataset

    base = ViewDataset(
        dataset.base, dataset.indices, prepare_transform(info), hide_labels=dataset.hide_labels
    )
    return DeviceViewDataset(base, stream), BatchView(info, names, memory_format=memory_format)


def _is_prepared(obj: object) -> bool:
    return (
        isinstance(obj, list | tuple)
        and len(obj) == 5
        and isinstance(obj[4], list | tuple)
        and len(obj[4]) > 0
        and isinstance(obj[4][0], str)
        and obj[4][0].startswith(PREPARED_TAG + ":")
    )


class DeviceBatches:
    """Iterate ``batches`` with every tensor on ``device`` (non-blocking) and every prepared
    stream's images replaced by their views, drawn on ``device``: ``(x, y, index, seed, tag)``
    becomes ``(views, y, index)``, wherever it sits in the batch (e.g. stage 2's
    ``(labeled, unlabeled)`` pairs)."""

    def __init__(self, batches: Iterable, views: dict[str, BatchView], device: torch.device) -> None:
        self.batches, self.views, self.device = batches, views, device

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        for batch in self.batches:
            yield self.convert(batch)

    def convert(self, obj: object) -> object:
        if _is_prepared(obj):
            x, y, index, seeds, tags = obj  # type: ignore[misc]
            view = self.views[tags[0][len(PREPARED_TAG) + 1 :]]
            seed = int(torch.as_tensor(seeds).view(-1)[0])
            x = x.to(self.device, non_blocking=True)
            return [view(x, seed=seed), y.to(self.device, non_blocking=True), index]
        if isinstance(obj, torch.Tensor):
            return obj.to(self.device, non_blocking=True)
        if isinstance(obj, list | tuple):
            return type(obj)(self.convert(o) for o in obj)
        return obj
