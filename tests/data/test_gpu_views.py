"""Batched views (ftsweep.data.gpu_views) against their per-image definitions, on CPU tensors:
exactly where a recipe or op is deterministic, in distribution where it is random."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ftsweep.data import TensorImageDataset, ViewDataset, build_view, resolve_info
from ftsweep.data.gpu_views import (
    BATCH_VIEWS,
    BatchView,
    DeviceBatches,
    DeviceViewDataset,
    apply_op,
    cutout,
    gaussian_kernels,
    pad_random_crop,
    prepare_size,
    prepare_transform,
    rand_augment,
    random_hflip,
    random_resized_crop_boxes,
    random_solarize,
)
from ftsweep.data.transforms import VIEWS, SampledRandAugment, SeparableGaussianBlur, separable_conv
from ftsweep.engine import make_loader


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, 3, side, side), generator=_gen(seed), dtype=torch.uint8)


@pytest.mark.parametrize("name", list(VIEWS))
@pytest.mark.parametrize("size", [32, 96])
def test_every_recipe_has_a_batched_form_that_is_seeded(name: str, size: int) -> None:
    info = resolve_info("cifar10", size)
    x = _images(6, prepare_size(info))
    view = BatchView(info, name)
    a, b = view(x, seed=3), view(x, seed=3)
    assert a.shape == (6, 3, size, size) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, b), "the same seed must give the same views"
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    raw = a * std + mean
    assert raw.min() >= -1e-4 and raw.max() <= 1 + 1e-4, "pixels stay in [0, 1] before normalisation"
    if name != "eval":
        assert not torch.equal(a, view(x, seed=4))


@pytest.mark.parametrize("size", [32, 96])
def test_eval_view_equals_the_per_image_eval_view(size: int) -> None:
    info = resolve_info("cifar10", size)
    r = prepare_size(info)
    x = _images(4, r)
    batched = BatchView(info, "eval")(x)
    per_image = torch.stack([build_view(info, "eval")(tv_tensors.Image(img)) for img in x])
    torch.testing.assert_close(batched, per_image, atol=1e-6, rtol=0)


def test_prepare_transform_gives_fixed_size_uint8() -> None:
    info = resolve_info("cifar10", 224)
    out = prepare_transform(info)(torch.randint(0, 256, (3, 375, 500), dtype=torch.uint8))
    assert out.dtype == torch.uint8 and tuple(out.shape) == (3, 256, 256)


def test_flip_with_a_fixed_draw_and_its_rate() -> None:
    x = torch.rand(8, 3, 5, 5)
    assert torch.equal(random_hflip(x, _gen(), p=1.0), x.flip(-1))
    assert torch.equal(random_hflip(x, _gen(), p=0.0), x)
    y = random_hflip(torch.arange(5.0).expand(4000, 1, 1, 5).contiguous(), _gen())
    rate = float((y[:, 0, 0, 0] == 4).float().mean())
    assert abs(rate - 0.5) < 0.03


def test_crop_boxes_follow_random_resized_crop_in_distribution() -> None:
    n, h, w = 4000, 256, 256
    boxes = random_resized_crop_boxes(n, h, w, _gen())
    cw, ch = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert bool(((boxes[:, 0] >= 0) & (boxes[:, 2] <= w) & (boxes[:, 1] >= 0) & (boxes[:, 3] <= h)).all())
    torch.manual_seed(0)
    ref = [
        v2.RandomResizedCrop.get_params(torch.empty(3, h, w), [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)
    ]
    ref_area = np.array([r[2] * r[3] for r in ref]) / (h * w)
    area = (cw * ch / (h * w)).numpy()
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(area, q) - np.quantile(ref_area, q)) < 0.03, q
    log_ratio = torch.log(cw / ch)
    assert float(log_ratio.abs().max()) <= math.log(4 / 3) + 0.02
    ref_x = np.array([r[1] / max(1, w - r[3]) for r in ref if r[3] < w])
    x_pos = (boxes[:, 0] / (w - cw).clamp(min=1))[cw < w].numpy()
    assert abs(x_pos.mean() - ref_x.mean()) < 0.03, "positions are uniform"


def test_pad_crop_offsets_cover_the_padded_range_uniformly() -> None:
    pad, side = 2, 6
    x = torch.arange(side * side, dtype=torch.float32).view(1, 1, side, side).expand(3000, 3, side, side)
    out = pad_random_crop(x.contiguous(), _gen(), pad=pad)
    padded = torch.nn.functional.pad(x[:1], (pad,) * 4, mode="reflect")[0, 0]
    counts = torch.zeros(2 * pad + 1, 2 * pad + 1)
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            crop = padded[oy : oy + side, ox : ox + side]
            counts[oy, ox] = (out[:, 0] == crop).all(-1).all(-1).sum()
    assert counts.sum() == 3000, "every output is one of the padded crops"
    assert counts.min() > 3000 / 25 * 0.6


def test_solarize_with_a_fixed_draw_equals_torchvision() -> None:
    x = _images(4, 8)
    ours = random_solarize(x.float() / 255, _gen(), p=1.0)
    ref = TF.solarize(x, 128).float() / 255
    torch.testing.assert_close(ours, ref)


def test_blur_is_separable_and_equals_torchvision_for_a_fixed_sigma() -> None:
    x = torch.rand(2, 3, 40, 40, dtype=torch.float64)
    sigma = torch.tensor([0.7, 1.6], dtype=torch.float64)
    ours = separable_conv(x, gaussian_kernels(sigma, 9))
    for i in range(2):
        ref = TF.gaussian_blur(x[i], [9, 9], [float(sigma[i])] * 2)
        torch.testing.assert_close(ours[i], ref)


def test_per_image_blur_matches_torchvision_with_the_same_seed() -> None:
    img = tv_tensors.Image(torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8, generator=_gen()))
    torch.manual_seed(5)
    ours = SeparableGaussianBlur(11)(img)
    torch.manual_seed(5)
    ref = v2.GaussianBlur(11, sigma=(0.1, 2.0))(img)
    assert isinstance(ours, tv_tensors.Image)
    assert int((ours.int() - ref.int()).abs().max()) <= 1


@pytest.mark.parametrize(
    ("name", "value", "ref"),
    [
        ("Brightness", 0.5, lambda im: TF.adjust_brightness(im, 1.5)),
        ("Color", -0.4, lambda im: TF.adjust_saturation(im, 0.6)),
        ("Contrast", 0.3, lambda im: TF.adjust_contrast(im, 1.3)),
        ("Sharpness", 0.8, lambda im: TF.adjust_sharpness(im, 1.8)),
        ("Solarize", 0.4, lambda im: TF.solarize(im, 0.4)),
        ("AutoContrast", 0.0, TF.autocontrast),
        ("Equalize", 0.0, TF.equalize),
        ("Invert", 0.0, TF.invert),
        (
            "TranslateX",
            3.0,
            lambda im: TF.affine(im, angle=0.0, translate=[3, 0], scale=1.0, shear=[0.0, 0.0]),
        ),
    ],
)
def test_augment_op_at_a_fixed_magnitude_equals_torchvision(name: str, value: float, ref) -> None:
    x = _images(3, 16).float() / 255
    ours = apply_op(name, x, torch.full((3,), value))
    expected = torch.stack([ref(img) for img in x])
    torch.testing.assert_close(ours, expected, atol=2e-6, rtol=0)


def test_posterize_keeps_the_top_bits() -> None:
    x = _images(2, 8)
    ours = apply_op("Posterize", x.float() / 255, torch.tensor([4.0, 6.0]))
    for i, bits in enumerate((4, 6)):
        torch.testing.assert_close(ours[i], TF.posterize(x[i], bits).float() / 255)


def test_rand_augment_draws_ops_per_sample() -> None:
    """kornia draws RandAugment's ops once per batch; here every sample draws its own."""
    x = _images(1, 32).float().expand(64, 3, 32, 32) / 255
    out = rand_augment(x, _gen(), num_ops=2)
    distinct = {tuple(o.flatten()[:64].tolist()) for o in out}
    assert len(distinct) > 32


def test_sampled_rand_augment_spans_magnitudes_one_to_ten() -> None:
    ra = SampledRandAugment(2)
    assert [op.magnitude for op in ra.ops] == list(range(1, 11))
    assert all(op.num_magnitude_bins == 11 and op.num_ops == 1 for op in ra.ops)
    img = tv_tensors.Image(_images(1, 32)[0])
    assert ra(img).shape == img.shape


def _cut_area(cy: int, cx: int, side: int = 16, size: int = 32) -> int:
    """Pixels of a ``side`` square from (c − side//2) on, clipped to the image, by hand."""
    rows = len(range(max(0, cy - side // 2), min(size, cy - side // 2 + side)))
    cols = len(range(max(0, cx - side // 2), min(size, cx - side // 2 + side)))
    return rows * cols


def test_cutout_is_fixmatch_s_half_side_square_on_every_image() -> None:
    # FixMatch: a 16-px square at 32 px on every image (before: a side U(0, 0.5)·S, often none)
    from ftsweep.data.transforms import Cutout

    x = torch.ones(4000, 3, 32, 32)
    zero = (cutout(x, _gen(), frac=0.5)[:, 0] == 0).float().sum(dim=(1, 2))
    assert (zero > 0).all() and (zero <= 16**2).all()
    assert float((zero == 256).float().mean()) > 0.2  # unclipped: exactly 16 × 16
    expected = np.mean([_cut_area(cy, cx) for cy in range(32) for cx in range(32)])  # uniform centre
    assert float(zero.mean()) == pytest.approx(expected, rel=0.02)
    torch.manual_seed(0)
    cpu = torch.tensor([float((Cutout(0.5)(x[0])[0] == 0).sum()) for _ in range(2000)])
    assert (cpu > 0).all() and (cpu <= 256).all()
    assert float(cpu.mean()) == pytest.approx(expected, rel=0.03)


def test_device_batches_turn_prepared_items_into_views() -> None:
    info = resolve_info("cifar10", 32)
    base = TensorImageDataset(_images(20, 32), np.arange(20) % 10)
    ds = DeviceViewDataset(ViewDataset(base, np.arange(20), prepare_transform(info)), "u")
    views = {"u": BatchView(info, ("weak", "strong"))}

    def batches():
        return DeviceBatches(
            [(lb, None) for lb in make_loader(ds, batch_size=8, shuffle=True, seed=1)],
            views,
            torch.device("cpu"),
        )

    first, again = list(batches()), list(batches())
    (x_w, x_s), y, index = first[0][0]
    assert x_w.shape == x_s.shape == (8, 3, 32, 32) and y.shape == (8,) and first[0][1] is None
    assert not torch.equal(x_w, x_s)
    for (a, _), (b, _) in zip(first, again, strict=True):
        assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[0][1], b[0][1]) and torch.equal(a[1], b[1])
    assert len(ds.indices) == 20, "the view dataset's attributes stay reachable"


def test_batch_views_registry_matches_views() -> None:
    assert set(BATCH_VIEWS) == set(VIEWS)


@pytest.mark.parametrize("method", ["ce", "fixmatch"])
def test_a_method_trains_with_batched_views_on_its_device(method: str) -> None:
    """gpu_augment: true on a CPU trial runs the batched path (what a CUDA trial does by default)."""
    from ftsweep.methods.ce import CEMethod
    from ftsweep.methods.fixmatch import FixMatchMethod

    cls = {"ce": CEMethod, "fixmatch": FixMatchMethod}[method]
    cfg = {"pretrained": "none", "device": "cpu", "epochs": 1, "batch_size": 8, "num_workers": 0}
    cfg |= {"max_train_batches": 1, "max_eval_batches": 1, "gpu_augment": True}
    if method == "fixmatch":
        cfg |= {"labels_per_class": 3, "iters_per_epoch": 1, "mu": 2}
    t = cls(cfg)
    assert t.batch_views is not None and isinstance(t.data.labeled, DeviceViewDataset)
    result = t.step()
    assert math.isfinite(result["train/loss"])


@pytest.mark.parametrize("name", ["simclr", "byol1", "byol2"])
@pytest.mark.parametrize("size", [32, 224])
def test_ssl_recipes_crop_at_byols_scale_at_every_size(name: str, size: int, monkeypatch) -> None:
    # BYOL's (and SimCLR's, also on CIFAR) random-resized crop: area in [0.08, 1] of the image,
    # per image and batched; the target-pretraining paper takes BYOL's augmentations (Sec. 4.2)
    info = resolve_info("cifar10", size)
    (crop,) = [t for t in build_view(info, name).transforms if isinstance(t, v2.RandomResizedCrop)]
    assert tuple(crop.scale) == (0.08, 1.0) and tuple(crop.size) == (size, size)
    import ftsweep.data.gpu_views as gv

    seen: list = []
    real = gv.random_resized_crop

    def recorded(x, size, g, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.append(kw.get("scale"))
        return real(x, size, g, **kw)

    monkeypatch.setattr(gv, "random_resized_crop", recorded)
    BatchView(info, name)(_images(2, prepare_size(info)), seed=0)
    assert seen == [(0.08, 1.0)]
