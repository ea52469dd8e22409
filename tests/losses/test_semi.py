"""Tests for ftsweep.losses.semi against hand-computed numbers and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ftsweep.losses.semi import fixmatch_loss, mean_teacher_loss, pseudo_label_mask, uda_loss


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _t(x: list[list[float]]) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# Row 0: softmax([ln 8, 0, 0]) = [0.8, 0.1, 0.1]; row 1: uniform; row 2: [0.5, 0.25, 0.25].
WEAK = [[math.log(8.0), 0.0, 0.0], [0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]]
STRONG = [[0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


# --------------------------------------------------------------------------- FixMatch


def test_fixmatch_one_confident_sample() -> None:
    loss = fixmatch_loss(_t(WEAK), _t(STRONG), 0.75)
    # Only row 0 passes (0.8 >= 0.75); pseudo-label 0; CE = log(1 + e + e^2) - 0.
    expected = math.log(1.0 + math.e + math.e**2) / 3.0
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_fixmatch_mask_and_labels() -> None:
    mask, labels = pseudo_label_mask(_t(WEAK), 0.5)
    assert mask.tolist() == [1.0, 0.0, 1.0]  # 0.5 >= 0.5 is kept
    assert labels[0].item() == 0 and labels[2].item() == 0


def test_fixmatch_threshold_zero_keeps_all() -> None:
    weak = _t([[2.0, 0.0], [0.0, 1.0]])
    strong = _t([[0.0, 0.0], [1.0, 0.0]])
    # Labels [0, 1]; CE row 0 = log 2, row 1 = log(1 + e) - 0.
    expected = (math.log(2.0) + math.log(1.0 + math.e)) / 2.0
    assert fixmatch_loss(weak, strong, 0.0).item() == pytest.approx(expected, rel=1e-12)


def test_fixmatch_threshold_one_masks_unsaturated_with_finite_grad() -> None:
    strong = _t(STRONG).requires_grad_(True)
    loss = fixmatch_loss(_t(WEAK), strong, 1.0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(strong.grad).all() and torch.equal(strong.grad, torch.zeros_like(strong))


def test_fixmatch_threshold_one_keeps_saturated() -> None:
    weak = _t([[1000.0, 0.0], [0.0, 0.0]])  # softmax row 0 is exactly [1, 0]
    strong = _t([[0.0, 0.0], [0.0, 0.0]])
    assert fixmatch_loss(weak, strong, 1.0).item() == pytest.approx(math.log(2.0) / 2.0)


def test_fixmatch_temperature_sharpens_pseudo_label_confidence() -> None:
    # Row 2 has max prob 0.5 at T=1; at T=0.5 it is 4 / 6 = 2/3.
    mask_t1, _ = pseudo_label_mask(_t(WEAK), 0.6)
    mask_t05, _ = pseudo_label_mask(_t(WEAK), 0.6, temperature=0.5)
    assert mask_t1.tolist() == [1.0, 0.0, 0.0]
    assert mask_t05.tolist() == [1.0, 0.0, 1.0]


def test_fixmatch_weak_gets_no_gradient() -> None:
    weak = _t(WEAK).requires_grad_(True)
    strong = _t(STRONG).requires_grad_(True)
    fixmatch_loss(weak, strong, 0.0).backward()
    assert weak.grad is None
    assert strong.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_fixmatch_rejects_threshold_outside_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        fixmatch_loss(_t(WEAK), _t(STRONG), bad)


# --------------------------------------------------------------------------- UDA


def _np_uda(weak: np.ndarray, strong: np.ndarray, threshold: float, temperature: float) -> float:
    mask = (_np_softmax(weak).max(axis=1) >= threshold).astype(np.float64)
    p = _np_softmax(weak / temperature)
    q = _np_softmax(strong)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1)
    return float((kl * mask).mean())


@pytest.mark.parametrize(("threshold", "temperature"), [(0.8, 0.4), (0.0, 1.0), (0.45, 0.7)])
def test_uda_matches_numpy(threshold: float, temperature: float) -> None:
    weak = np.array(WEAK) + np.array([[0.0, 0.3, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.2]])
    strong = np.array(STRONG)
    expected = _np_uda(weak, strong, threshold, temperature)
    got = uda_loss(
        torch.from_numpy(weak),
        torch.from_numpy(strong),
        threshold=threshold,
        temperature=temperature,
    )
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_uda_mask_uses_unsharpened_probabilities() -> None:
    # Row 2 max prob is 0.5 unsharpened, 0.8 after T=0.5 sharpening: must stay masked at 0.6.
    weak, strong = _t([WEAK[2]]), _t([STRONG[2]])
    assert uda_loss(weak, strong, threshold=0.6, temperature=0.5).item() == 0.0
    assert uda_loss(weak, strong, threshold=0.5, temperature=0.5).item() > 0.0


def test_uda_zero_when_views_agree_and_weak_detached() -> None:
    weak = _t(WEAK).requires_grad_(True)
    loss = uda_loss(weak, _t(WEAK), threshold=0.0, temperature=1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-14)
    strong = _t(STRONG).requires_grad_(True)
    uda_loss(weak, strong, threshold=0.0, temperature=0.4).backward()
    assert weak.grad is None and torch.isfinite(strong.grad).all()


def test_uda_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="1.2"):
        uda_loss(_t(WEAK), _t(STRONG), threshold=1.2, temperature=0.4)
    with pytest.raises(ValueError, match="temperature"):
        uda_loss(_t(WEAK), _t(STRONG), threshold=0.8, temperature=0.0)


# --------------------------------------------------------------------------- Mean Teacher


def test_mean_teacher_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    per_sample = ((_np_softmax(s) - _np_softmax(t)) ** 2).sum(axis=1)
    got = mean_teacher_loss(torch.from_numpy(s), torch.from_numpy(t))
    assert got.item() == pytest.approx(per_sample.mean(), rel=1e-12)
    official = mean_teacher_loss(torch.from_numpy(s), torch.from_numpy(t), variant="official")
    assert official.item() == pytest.approx(((_np_softmax(s) - _np_softmax(t)) ** 2).mean())


def test_mean_teacher_hand_computed_and_teacher_detached() -> None:
    student = _t([[0.0, 0.0]]).requires_grad_(True)  # [0.5, 0.5]
    teacher = _t([[math.log(3.0), 0.0]]).requires_grad_(True)  # [0.75, 0.25]
    loss = mean_teacher_loss(student, teacher)
    assert loss.item() == pytest.approx(2 * 0.25**2, rel=1e-12)
    loss.backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_mean_teacher_symmetric_value_and_bad_variant() -> None:
    s, t = _t(WEAK), _t(STRONG)
    assert mean_teacher_loss(s, t).item() == pytest.approx(mean_teacher_loss(t, s).item())
    with pytest.raises(ValueError, match="variant"):
        mean_teacher_loss(s, t, variant="typo")  # type: ignore[arg-type]


@pytest.mark.parametrize("which", ["fixmatch", "uda"])
def test_return_mask_gives_the_same_loss_and_the_confidence_mask(which: str) -> None:
    # thresholds 0.75: only row 0 (max prob 0.8) passes; UDA's mask uses T = 1 whatever its T
    if which == "fixmatch":
        plain = fixmatch_loss(_t(WEAK), _t(STRONG), 0.75)
        loss, mask = fixmatch_loss(_t(WEAK), _t(STRONG), 0.75, return_mask=True)
    else:
        plain = uda_loss(_t(WEAK), _t(STRONG), threshold=0.75, temperature=0.4)
        loss, mask = uda_loss(_t(WEAK), _t(STRONG), threshold=0.75, temperature=0.4, return_mask=True)
    assert loss.item() == plain.item()
    assert mask.tolist() == [1.0, 0.0, 0.0]
