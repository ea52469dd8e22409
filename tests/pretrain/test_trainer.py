"""Stage-1 target pretraining: BYOL / MoCo v2 steps against hand-written formulas, the L2 pull to
Φ_pre, LARS groups and the backbone that :func:`pretrain_target` writes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ftsweep.backbones import create_backbone, load_backbone_weights
from ftsweep.pretrain.stage1 import pretrain_target
from ftsweep.pretrain.trainer import TargetPretrainer


def fixed_views(trainer: TargetPretrainer, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(trainer.batches.epoch(seed)))


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(len(a))
    for i in range(len(a)):
        out[i] = float(a[i] @ b[i]) / (math.sqrt(float(a[i] @ a[i])) * math.sqrt(float(b[i] @ b[i])))
    return out


def perturb_backbone(trainer: TargetPretrainer, scale: float = 0.05, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in trainer.model["backbone"].parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


# ---- BYOL --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_byol_loss_is_symmetric_cosine_loss_plus_lambda_l2_to_init(reduction, tiny):
    lam = 0.3
    tr = TargetPretrainer(tiny(l2_init=lam, byol_reduction=reduction))
    perturb_backbone(tr)
    x1, x2 = fixed_views(tr)
    tr.model.train()
    tr.target.train()
    loss, logs = tr.loss(x1, x2)

    with torch.no_grad():
        m, t = tr.model, tr.target
        p1 = np64(m["predictor"](m["projector"](m["backbone"](x1))))
        p2 = np64(m["predictor"](m["projector"](m["backbone"](x2))))
        z1 = np64(t["projector"](t["backbone"](x1)))
        z2 = np64(t["projector"](t["backbone"](x2)))
    c12, c21 = cos_rows(p1, z2), cos_rows(p2, z1)
    if reduction == "mean":
        ssl = np.mean(2 - 2 * c12) + np.mean(2 - 2 * c21)
    else:  # Eq. 3: batch sum of -cos (+ constant), averaged over the two directions
        ssl = 0.5 * (np.sum(1 - c12) + np.sum(1 - c21))
    l2 = sum(
        float(((p.detach().double() - p0.double()) ** 2).sum())
        for p, p0 in zip(tr.model["backbone"].parameters(), tr.init_params, strict=True)
    )
    assert l2 > 0
    assert float(loss.detach()) == pytest.approx(ssl + lam * l2, rel=1e-5)
    assert float(logs["l2_init"].detach()) == pytest.approx(l2, rel=1e-5)


def test_l2_to_init_gradient_is_two_lambda_times_displacement_on_backbone_only(tiny):
    lam = 0.5
    tr = TargetPretrainer(tiny(l2_init=lam))
    perturb_backbone(tr)
    x1, x2 = fixed_views(tr)
    with_l2, _ = tr.loss(x1, x2)
    grads_with = torch.autograd.grad(with_l2, list(tr.model.parameters()), allow_unused=True)
    tr0 = TargetPretrainer(tiny(l2_init=0.0))
    tr0.model.load_state_dict(tr.model.state_dict())
    tr0.target.load_state_dict(tr.target.state_dict())
    without, logs0 = tr0.loss(x1, x2)
    assert "l2_init" not in logs0
    grads_without = torch.autograd.grad(without, list(tr0.model.parameters()), allow_unused=True)
    names = [n for n, _ in tr.model.named_parameters()]
    init = dict(zip([n for n, _ in tr.model["backbone"].named_parameters()], tr.init_params, strict=True))
    for name, p, gw, g0 in zip(names, tr.model.parameters(), grads_with, grads_without, strict=True):
        gw = torch.zeros_like(p) if gw is None else gw
        g0 = torch.zeros_like(p) if g0 is None else g0
        if name.startswith("backbone."):
            expected = 2 * lam * (p.detach() - init[name.removeprefix("backbone.")])
        else:
            expected = torch.zeros_like(p)
        torch.testing.assert_close(gw - g0, expected, atol=2e-5, rtol=1e-4, msg=name)


def test_every_online_parameter_gets_a_finite_gradient_and_target_none(assert_grads, tiny):
    tr = TargetPretrainer(tiny())
    loss, _ = tr.loss(*fixed_views(tr))
    loss.backward()
    assert_grads(tr.model)
    assert all(p.grad is None and not p.requires_grad for p in tr.target.parameters())


def test_target_is_ema_of_online_with_byol_cosine_momentum(tiny):
    cfg = tiny(tau_base=0.9, epochs=2, max_train_batches=2)
    tr = TargetPretrainer(cfg)
    total = cfg.epochs * tr.steps_per_epoch
    assert total == 4
    online = {**{f"backbone.{k}": v for k, v in tr.model["backbone"].named_parameters()}}
    online.update({f"projector.{k}": v for k, v in tr.model["projector"].named_parameters()})
    target = dict(tr.target.named_parameters())
    for k, views in enumerate(list(tr.batches.epoch(0))[:2]):
        before = {n: p.detach().clone() for n, p in target.items()}
        loss, _ = tr.loss(*views)
        tr.optimizer.zero_grad()
        loss.backward()
        tr.optimizer.step()
        tr.after_step()
        m = 1 - (1 - 0.9) * (math.cos(math.pi * k / total) + 1) / 2
        for name, t in target.items():
            expected = m * before[name] + (1 - m) * online[name].detach()
            torch.testing.assert_close(t, expected, atol=1e-6, rtol=1e-6, msg=name)
        assert tr.global_step == k + 1
    # BatchNorm statistics are copied from the online network
    for (n, b), (_, bo) in zip(
        tr.target["backbone"].named_buffers(), tr.model["backbone"].named_buffers(), strict=True
    ):
        assert torch.equal(b, bo), n
    assert tr.momentum() == pytest.approx(1 - 0.1 * (math.cos(math.pi * 2 / 4) + 1) / 2)


def test_lars_adapts_weights_but_not_biases_and_norms(tiny):
    tr = TargetPretrainer(tiny())
    assert type(tr.optimizer).__name__ == "Lars"
    for g in tr.optimizer.param_groups:
        no_decay = g["name"].endswith("/no_decay")
        assert g["always_adapt"] is (not no_decay)
        assert (g["weight_decay"] == 0) == no_decay
        assert g["lr"] == pytest.approx(0.3 * 16 / 256)
    bn = tr.model["backbone"].features[1].weight
    assert any(
        bn is p for g in tr.optimizer.param_groups if g["name"].endswith("/no_decay") for p in g["params"]
    )


# ---- MoCo v2 ----------------------------------------------------------------------------------------
def test_moco_v2_projector_is_linear_relu_linear_and_byol_keeps_batchnorm(tiny):
    moco = TargetPretrainer(tiny(objective="moco_v2", proj_dim=16, proj_hidden=32))
    for part in (moco.model["projector"], moco.target["projector"]):
        assert [type(m) for m in part] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
        assert part[0].bias is not None and part[2].out_features == 16 and part[0].out_features == 32
    byol = TargetPretrainer(tiny(objective="byol"))
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in byol.model["projector"].modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in byol.model["predictor"].modules())


def test_moco_step_uses_old_queue_then_enqueues_keys_and_moves_key_encoder(tiny):
    cfg = tiny(objective="moco_v2", moco_momentum=0.9, moco_temperature=0.5, l2_init=0.0)
    tr = TargetPretrainer(cfg)
    perturb_backbone(tr)  # online != key encoder
    x1, x2 = fixed_views(tr)
    old_queue = tr.queue.keys.clone()
    ptr0 = tr.queue.ptr
    before = {n: p.detach().clone() for n, p in tr.target.named_parameters()}
    loss, _ = tr.loss(x1, x2)
    with torch.no_grad():
        q = np64(tr.model["projector"](tr.model["backbone"](x1)))
        k = np64(tr.target["projector"](tr.target["backbone"](x2)))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    queue = np64(old_queue)
    expected = 0.0
    for i in range(len(q)):
        logits = np.array([q[i] @ k[i]] + [q[i] @ queue[j] for j in range(len(queue))]) / 0.5
        expected += -logits[0] + math.log(np.exp(logits).sum())
    assert float(loss.detach()) == pytest.approx(expected / len(q), rel=1e-5)

    tr.optimizer.zero_grad()
    loss.backward()
    tr.optimizer.step()
    tr.after_step()
    b = len(x1)
    rows = (ptr0 + np.arange(b)) % cfg.moco_queue
    torch.testing.assert_close(tr.queue.keys[rows].double(), torch.from_numpy(k), atol=1e-5, rtol=0)
    untouched = np.setdiff1d(np.arange(cfg.moco_queue), rows)
    assert torch.equal(tr.queue.keys[untouched], old_queue[untouched])
    assert tr.queue.ptr == (ptr0 + b) % cfg.moco_queue
    online = dict(tr.model.named_parameters())
    for name, t in tr.target.named_parameters():
        torch.testing.assert_close(t, 0.9 * before[name] + 0.1 * online[name].detach(), atol=1e-6, rtol=1e-6)


# ---- training output -------------------------------------------------------------------------------
def test_pretrain_target_writes_a_loadable_backbone_that_moved(tmp_path, tiny):
    out = tmp_path / "b.pt"
    cfg = tiny(epochs=1, max_train_batches=2)
    init = TargetPretrainer(cfg).model["backbone"].state_dict()  # deterministic in cfg.seed
    metrics = pretrain_target(cfg, out, log=False)
    assert metrics["steps"] == 2 and math.isfinite(metrics["train/loss"])
    backbone = create_backbone("small_cnn")
    load_backbone_weights(backbone, out, format="ftsweep")
    moved = [
        k
        for k, v in backbone.state_dict().items()
        if v.dtype.is_floating_point and not torch.equal(v, init[k])
    ]
    assert moved


# ---- how it runs: workers, precision, memory layout, device views -----------------------------------
def _image_folder(root, side: int = 40, per_class: int = 12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.png"
                )
    return str(root)


def test_num_workers_auto_is_the_trials_cpus_minus_one_for_per_sample_views(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    from ftsweep.engine import trial_cpus

    t = TargetPretrainer(tiny(dataset=_image_folder(tmp_path), batch_size=8))
    assert t.batches.num_workers == trial_cpus() - 1 and trial_cpus() <= 3
    assert TargetPretrainer(tiny(dataset=str(tmp_path), batch_size=8, num_workers=0)).batches.num_workers == 0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_precision_autocasts_the_step_like_the_fine_tuners(tiny, precision):
    """On the CPU ``auto`` stays fp32 (unchanged); an explicit bf16 / fp16 runs the step under
    autocast (fp16 with a GradScaler): a different, finite loss, and the weights move."""
    assert TargetPretrainer(tiny()).precision == "fp32"
    ref, low = (
        TargetPretrainer(tiny(epochs=1, max_train_batches=1)),
        TargetPretrainer(tiny(epochs=1, max_train_batches=1, precision=precision)),
    )
    assert low.precision == precision
    before = [p.detach().clone() for p in low.model["backbone"].parameters()]
    a, b = ref.train_epoch()["loss"], low.train_epoch()["loss"]
    assert math.isfinite(b) and a != b
    assert abs(a - b) < 0.05 * abs(a)
    if precision == "bf16":  # fp16's first scaled step may overflow and be skipped, as torch's AMP does
        assert any(
            not torch.equal(p, q) for p, q in zip(before, low.model["backbone"].parameters(), strict=True)
        )


def test_channels_last_puts_online_and_target_networks_in_nhwc(tiny):
    t = TargetPretrainer(tiny(channels_last=True))
    convs = [m.weight for net in (t.model, t.target) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not TargetPretrainer(tiny()).channels_last, "auto: off on the CPU"
    x1, _ = fixed_views(t)
    assert x1.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(t.train_epoch()["loss"])


@pytest.mark.parametrize("objective", ["byol", "moco_v2"])
def test_device_views_train_stage1_from_prepared_images(tmp_path, tiny, objective):
    """``gpu_augment`` (on CUDA by default; forced here on the CPU): the loader yields prepared
    uint8 images and the two views are drawn batched on the device."""
    from ftsweep.data.gpu_views import DeviceViewDataset

    cfg = tiny(
        dataset=_image_folder(tmp_path), image_size=32, batch_size=8, objective=objective, gpu_augment=True
    )
    t = TargetPretrainer(cfg)
    assert isinstance(t.batches.dataset, DeviceViewDataset) and t.batches.batch_view is not None
    x1, x2 = fixed_views(t)
    assert x1.shape == x2.shape == (8, 3, 32, 32) and x1.dtype == torch.float32 and not torch.equal(x1, x2)
    assert all(math.isfinite(v) for v in t.train_epoch().values())
