"""The faster per-image kernels of ftsweep.data.transforms against torchvision's own, for the
same parameters: the closed-form hue rotation, the colour jitter built on it, the blur."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ftsweep.data.gpu_views import adjust_hue
from ftsweep.data.transforms import ColorJitter, adjust_hue_uint8, rotate_hue, separable_conv

#: every colour on a grid of step 3 (86³ ≈ 636k), as one (3, N, 1) uint8 image
COLOURS = (
    torch.stack(torch.meshgrid(*[torch.arange(0, 256, 3)] * 3, indexing="ij"))
    .reshape(3, -1, 1)
    .to(torch.uint8)
)


def _images(b: int, side: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, 3, side, side), generator=g, dtype=torch.uint8)
    x[:, :, :4] = x[:, :1, :4]  # grey rows: no hue
    x[:, 1, 4:8] = x[:, 0, 4:8]  # red = green ties
    x[:, 2, 8:12] = x[:, 1, 8:12]  # green = blue ties
    return x


@pytest.mark.parametrize("hue", [0.0, 0.5, -0.5, 1 / 6, -1 / 3, 0.07, -0.093, 0.31])
def test_uint8_hue_is_torchvisions_within_one_level_on_a_tiny_fraction_of_values(hue: float) -> None:
    ours = adjust_hue_uint8(COLOURS, hue).int()
    ref = TF.adjust_hue(COLOURS, hue).int()
    diff = (ours - ref).abs()
    assert int(diff.max()) <= 1
    assert float((diff > 0).float().mean()) < 1e-4
    # the largest and smallest channel of every pixel are exact
    lo, hi = ref.min(dim=0).values, ref.max(dim=0).values
    assert torch.equal(ours.min(dim=0).values, lo) and torch.equal(ours.max(dim=0).values, hi)


def test_hue_rotation_of_float_images_equals_torchvision_per_sample() -> None:
    x = _images(6, 24).float() / 255
    shift = torch.tensor([-0.5, -0.21, 0.0, 0.05, 0.33, 0.5])
    expected = torch.stack([TF.adjust_hue(x[i], float(shift[i])) for i in range(6)])
    torch.testing.assert_close(adjust_hue(x, shift), expected, atol=3e-6, rtol=0)
    # any scale: [0, 255] gives 255 × the [0, 1] result
    torch.testing.assert_close(rotate_hue(x * 255, 0.05), rotate_hue(x, 0.05) * 255, atol=1e-3, rtol=0)


def test_hue_of_pure_colours_turns_by_sextants() -> None:
    red = torch.tensor([255.0, 0.0, 0.0]).view(3, 1, 1)
    assert rotate_hue(red, 1 / 3).flatten().tolist() == [0.0, 255.0, 0.0]  # red → green
    assert rotate_hue(red, -1 / 3).flatten().tolist() == [0.0, 0.0, 255.0]  # red → blue
    assert rotate_hue(red, 1 / 12).flatten().tolist() == pytest.approx([255.0, 127.5, 0.0])


@pytest.mark.parametrize("strength", [(0.4, 0.4, 0.2, 0.1), (0.4, 0.4, 0.4, 0.5), (0.4, 0.4)])
def test_color_jitter_draws_as_torchvision_and_matches_its_output(strength: tuple) -> None:
    images = _images(40, 20, seed=1)
    ours, ref = ColorJitter(*strength), v2.ColorJitter(*strength)
    worst, differing = 0, 0
    for i, img in enumerate(images):
        torch.manual_seed(i)
        a = ours(tv_tensors.Image(img))
        after_ours = torch.rand(())
        torch.manual_seed(i)
        b = ref(tv_tensors.Image(img))
        assert torch.rand(()) == after_ours, "the same random draws as torchvision's"
        assert isinstance(a, tv_tensors.Image) and a.dtype == torch.uint8
        d = (a.int() - b.int()).abs()
        worst, differing = max(worst, int(d.max())), differing + int((d > 0).sum())
    # a one-level hue difference can move the later ops by a level too
    assert worst <= 2
    assert differing / images.numel() < 1e-3


def test_color_jitter_leaves_float_images_to_torchvision() -> None:
    img = _images(1, 16)[0].float() / 255
    torch.manual_seed(3)
    a = ColorJitter(0.4, 0.4, 0.2, 0.1)(img)
    torch.manual_seed(3)
    b = v2.ColorJitter(0.4, 0.4, 0.2, 0.1)(img)
    assert torch.equal(a, b)


def test_separable_conv_equals_a_direct_2d_convolution() -> None:
    x = torch.rand(2, 3, 17, 21, dtype=torch.float64)
    kernels = torch.rand(2, 5, dtype=torch.float64)
    ours = separable_conv(x, kernels)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(2):
        k2 = torch.outer(kernels[i], kernels[i]).expand(3, 1, 5, 5)
        ref = torch.nn.functional.conv2d(padded[i : i + 1], k2, groups=3)
        torch.testing.assert_close(ours[i : i + 1], ref)
