"""Resize-then-crop views (``resize_size``, Core-tuning's 272 → 256 on CIFAR) and the paper
scales of the COIN and Core-tuning CIFAR specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ftsweep.config import ConfigError, TrainConfig
from ftsweep.config.spec import load_spec
from ftsweep.data import build_view, resolve_info
from ftsweep.data.gpu_views import BatchView, prepare_size, prepare_transform, random_crop

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def _image(side: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, side, side), generator=g, dtype=torch.uint8)


def _windows(big: torch.Tensor, size: int) -> list[torch.Tensor]:
    r = big.shape[-1]
    return [big[..., i : i + size, j : j + size] for i in range(r - size + 1) for j in range(r - size + 1)]


def _normalised(x: torch.Tensor, info) -> torch.Tensor:  # noqa: ANN001
    return v2.Normalize(info.mean, info.std)(v2.ToDtype(torch.float32, scale=True)(x))


def test_resolve_info_sets_the_resize_side_and_refuses_one_below_the_crop() -> None:
    info = resolve_info("digits", 24, 28)
    assert (info.image_size, info.resize_size) == (24, 28)
    assert resolve_info("digits").resize_size is None
    with pytest.raises(ValueError, match="smaller than the crop"):
        resolve_info("digits", 24, 20)


@pytest.mark.parametrize("view", ["weak", "standard"])
def test_training_view_is_a_random_crop_of_the_resized_image(view: str) -> None:
    info = resolve_info("digits", 24, 28)  # digits: no flip, so the crop is a plain window
    img = _image(32)
    resized = _normalised(v2.Resize((28, 28), antialias=True)(tv_tensors.Image(img)), info)
    windows = _windows(resized, 24)
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = build_view(info, view)(tv_tensors.Image(img))
        assert out.shape == (3, 24, 24)
        hits = [k for k, w in enumerate(windows) if torch.equal(out, w)]
        assert len(hits) >= 1, "every training crop is a 24-px window of the 28-px resize"
        seen.add(hits[0])
    assert len(seen) > 1, "the offset is random"


def test_eval_view_resizes_the_whole_image_to_the_crop_side() -> None:
    info = resolve_info("cifar10", 96, 102)
    img = _image(32)
    expected = _normalised(v2.Resize((96, 96), antialias=True)(tv_tensors.Image(img)), info)
    torch.testing.assert_close(build_view(info, "eval")(tv_tensors.Image(img)), expected, atol=0, rtol=0)


def test_batched_views_prepare_at_the_resize_side_and_crop_windows() -> None:
    info = resolve_info("digits", 24, 28)
    assert prepare_size(info) == 28
    prepared = prepare_transform(info)(_image(32))
    assert tuple(prepared.shape) == (3, 28, 28)
    x = torch.stack([prepared, prepare_transform(info)(_image(32, seed=1))])
    out = BatchView(info, "weak")(x, seed=0)
    assert out.shape == (2, 3, 24, 24)
    mean, std = torch.tensor(info.mean).view(3, 1, 1), torch.tensor(info.std).view(3, 1, 1)
    for b in range(2):
        ref = (x[b].float() / 255 - mean) / std
        assert any(torch.allclose(out[b], w, atol=1e-5) for w in _windows(ref, 24))


def test_random_crop_draws_every_offset_and_keeps_the_content() -> None:
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5).repeat(200, 1, 1, 1)
    out = random_crop(x, torch.Generator().manual_seed(0), size=3)
    offsets = set()
    for b in range(out.shape[0]):
        i, j = divmod(int(out[b, 0, 0, 0] - x[b, 0, 0, 0]), 5)
        assert torch.equal(out[b], x[b, :, i : i + 3, j : j + 3])
        offsets.add((i, j))
    assert offsets == {(i, j) for i in range(3) for j in range(3)}


def test_config_checks_the_resize_side_against_the_crop() -> None:
    assert TrainConfig.from_dict({"dataset": "digits", "resize_size": 36}).resize_size == 36
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"dataset": "digits", "resize_size": 28})  # digits crop 32
    assert err.value.field == "resize_size"
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"dataset": "digits", "image_size": 64, "resize_size": 48})


@pytest.mark.parametrize(
    ("spec", "scale"),
    [
        ("coin_table1", (224, None)),
        ("coin_table3", (224, None)),
        ("coin_table4", (224, None)),
        ("core_tuning_table1", (256, 272)),
        ("core_tuning_table2", (256, 272)),
    ],
)
def test_cifar_jobs_use_the_scale_of_the_papers_code(spec: str, scale: tuple) -> None:
    jobs = load_spec(SWEEPS / f"{spec}.yaml").jobs()
    cifar = [j for j in jobs if j.dataset.startswith("cifar")]
    assert cifar and all((j.fixed.get("image_size"), j.fixed.get("resize_size")) == scale for j in cifar)
    others = [j for j in jobs if not j.dataset.startswith("cifar")]
    assert all("image_size" not in j.fixed and "resize_size" not in j.fixed for j in others)
    smoke = load_spec(SWEEPS / f"{spec}.yaml", smoke=True).jobs()
    assert all(j.fixed.get("image_size") is None and j.fixed.get("resize_size") is None for j in smoke)


def _wide_image_with_a_stripe() -> torch.Tensor:
    """200 × 400 (H × W), black but for a white stripe over columns 60–99 (15–25 % of the width)."""
    img = torch.zeros(3, 200, 400, dtype=torch.uint8)
    img[..., 60:100] = 255
    return img


@pytest.mark.parametrize("eval_resize", ["shorter", "square"])
def test_eval_view_of_large_images_resizes_as_eval_resize_says(eval_resize: str) -> None:
    info = resolve_info("cifar10", 224, None, eval_resize)
    img = tv_tensors.Image(_wide_image_with_a_stripe())
    side = (256, 256) if eval_resize == "square" else 256  # round(224 / 0.875) = 256
    expected = _normalised(v2.CenterCrop(224)(v2.Resize(side, antialias=True)(img)), info)
    out = build_view(info, "eval")(img)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    # square: the stripe lands at columns 38–64 of 256, 22–48 of the crop; shorter: at 77–128 of
    # 512, outside the crop's 144–368
    stripe = out[0].amax(dim=0) > out[0].amin()
    assert stripe.any().item() is (eval_resize == "square")


def test_core_tuning_and_coin_test_on_the_papers_square_resize() -> None:
    from ftsweep.methods.coin import CoinConfig
    from ftsweep.methods.core_tuning import CoreTuningConfig

    assert CoreTuningConfig().eval_resize == CoinConfig().eval_resize == "square"
    assert TrainConfig().eval_resize == "shorter"
    with pytest.raises(ConfigError, match="eval_resize: 'wide' — must be one of shorter, square"):
        TrainConfig.from_dict({"eval_resize": "wide"})
