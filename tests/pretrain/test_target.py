"""Stage-1 target pretraining: BYOL / MoCo v2 steps against hand-written formulas, the L2 pull to
Φ_pre, the MoCo queue, the batched BYOL view and the build-once stage-1 checkpoint cache."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import ftsweep.pretrain.target as target_mod
from ftsweep.backbones import create_backbone, load_backbone_weights
from ftsweep.cache import CachedBuildError
from ftsweep.config import ConfigError
from ftsweep.data import get_dataset_info
from ftsweep.data.batch_views import batch_simclr_view
from ftsweep.pretrain.target import (
    MoCoQueue,
    TargetPretrainConfig,
    TargetPretrainer,
    batch_byol_view,
    stage1_checkpoint,
    stage1_key,
    target_pool,
)

REPO = Path(__file__).resolve().parents[2]
TINY = dict(
    epochs=3,
    batch_size=16,
    proj_dim=8,
    proj_hidden=16,
    pred_hidden=16,
    moco_queue=40,
    max_train_batches=2,
    device="cpu",
    cluster_n_init=1,
)


def tiny(**changes) -> TargetPretrainConfig:
    return TargetPretrainConfig(**{**TINY, **changes})


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


# ---- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tau_base", 1.5),
        ("tau_base", -0.1),
        ("l2_init", -1e-3),
        ("objective", "simclr"),
        ("optimizer", "adam"),
        ("moco_temperature", 0.0),
        ("moco_momentum", 1.2),
        ("byol_reduction", "max"),
        ("lr", 0.0),
        ("device", "gpu"),
    ],
)
def test_bad_config_raises_config_error_naming_field(field, value):
    with pytest.raises(ConfigError) as err:
        TargetPretrainConfig.from_dict({field: value})
    assert field in str(err.value) and str(value) in str(err.value)


def test_warmup_must_be_shorter_than_training():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        TargetPretrainConfig(epochs=5, warmup_epochs=5)


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigError, match="did you mean 'tau_base'"):
        TargetPretrainConfig.from_dict({"tau_bas": 0.99})


def test_lr_is_scaled_by_batch_over_256_and_projector_defaults_follow_objective():
    assert TargetPretrainConfig().scaled_lr == pytest.approx(0.3)
    assert TargetPretrainConfig(batch_size=512, lr=0.3).scaled_lr == pytest.approx(0.6)
    assert TargetPretrainConfig(objective="byol").projector_dims == (256, 4096)
    assert TargetPretrainConfig(objective="moco_v2").projector_dims == (128, 2048)
    assert TargetPretrainConfig(objective="moco_v2", proj_dim=64).projector_dims == (64, 2048)


# ---- data --------------------------------------------------------------------------------------------
def test_pool_is_train_minus_validation_whatever_the_label_budget():
    base = target_pool(tiny())
    for extra in ({"labels_per_class": 2}, {"num_labels": 50}):
        assert np.array_equal(target_pool(tiny(**extra)), base)
    from ftsweep.data import load_dataset_cached, make_splits

    loaded = load_dataset_cached("digits", "data", False)
    val = make_splits(loaded.train_targets, seed=0, val_fraction=0.1).val
    assert len(np.intersect1d(base, val)) == 0
    assert len(base) + len(val) == len(loaded.train)
    assert not np.array_equal(target_pool(tiny(seed=1)), base)


def test_batched_byol_view_solarises_with_probability_one_and_matches_simclr_view_without():
    info = get_dataset_info("digits")
    imgs = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    plain = batch_byol_view(imgs, info, solarize_p=0.0, generator=torch.Generator().manual_seed(3))
    ref = batch_simclr_view(imgs, info, generator=torch.Generator().manual_seed(3))
    assert torch.equal(plain, ref)
    sol = batch_byol_view(imgs, info, solarize_p=1.0, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor(info.mean).view(1, 3, 1, 1)
    std = torch.tensor(info.std).view(1, 3, 1, 1)
    raw_ref, raw_sol = ref * std + mean, sol * std + mean
    expected = torch.where(raw_ref >= 0.5, 1 - raw_ref, raw_ref)
    torch.testing.assert_close(raw_sol, expected, atol=1e-5, rtol=0)


def test_per_sample_view_batches_are_full_deterministic_and_differ_between_views():
    from ftsweep.data import ViewDataset, build_views, load_dataset_cached

    info = get_dataset_info("digits")
    loaded = load_dataset_cached("digits", "data", False)
    ds = ViewDataset(loaded.train, np.arange(21), build_views(info, ["byol1", "byol2"]))
    batches = target_mod._ViewPoolBatches(ds, batch_size=8)
    assert len(batches) == 2
    first = list(batches.epoch(5))
    again = list(batches.epoch(5))
    assert [x1.shape for x1, _ in first] == [torch.Size([8, 3, 32, 32])] * 2
    for (a1, a2), (b1, b2) in zip(first, again, strict=True):
        assert torch.equal(a1, b1) and torch.equal(a2, b2)
        assert not torch.equal(a1, a2)
    assert not torch.equal(first[0][0], next(iter(batches.epoch(6)))[0])


# ---- BYOL --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_byol_loss_is_symmetric_cosine_loss_plus_lambda_l2_to_init(reduction):
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


def test_l2_to_init_gradient_is_two_lambda_times_displacement_on_backbone_only():
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


def test_every_online_parameter_gets_a_finite_gradient_and_target_none(assert_grads):
    tr = TargetPretrainer(tiny())
    loss, _ = tr.loss(*fixed_views(tr))
    loss.backward()
    assert_grads(tr.model)
    assert all(p.grad is None and not p.requires_grad for p in tr.target.parameters())


def test_target_is_ema_of_online_with_byol_cosine_momentum():
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


def test_lars_adapts_weights_but_not_biases_and_norms():
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
def test_moco_queue_overwrites_oldest_rows_and_wraps():
    q = MoCoQueue(5, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(q.keys.norm(dim=1), torch.ones(5))
    initial = q.keys.clone()
    a = torch.arange(6, dtype=torch.float32).view(3, 2)
    q.enqueue(a)
    assert q.ptr == 3
    assert torch.equal(q.keys[:3], a) and torch.equal(q.keys[3:], initial[3:])
    b = 10 + torch.arange(6, dtype=torch.float32).view(3, 2)
    q.enqueue(b)
    assert q.ptr == 1
    assert torch.equal(q.keys[3], b[0]) and torch.equal(q.keys[4], b[1]) and torch.equal(q.keys[0], b[2])
    assert torch.equal(q.keys[1:3], a[1:])
    c = 100 + torch.arange(14, dtype=torch.float32).view(7, 2)  # more keys than slots: last 5 stay
    q.enqueue(c)
    assert sorted(map(tuple, q.keys.tolist())) == sorted(map(tuple, c[-5:].tolist()))


def test_moco_step_uses_old_queue_then_enqueues_keys_and_moves_key_encoder():
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
def test_pretrain_target_writes_a_loadable_backbone_that_moved(tmp_path):
    out = tmp_path / "b.pt"
    cfg = tiny(epochs=1, max_train_batches=2)
    init = TargetPretrainer(cfg).model["backbone"].state_dict()  # deterministic in cfg.seed
    metrics = target_mod.pretrain_target(cfg, out, log=False)
    assert metrics["steps"] == 2 and math.isfinite(metrics["train/loss"])
    backbone = create_backbone("small_cnn")
    load_backbone_weights(backbone, out, format="ftsweep")
    moved = [
        k
        for k, v in backbone.state_dict().items()
        if v.dtype.is_floating_point and not torch.equal(v, init[k])
    ]
    assert moved


# ---- the stage-1 cache -----------------------------------------------------------------------------
def _fake_builder(calls: list):
    def fake(cfg, out_path, *, log=True):
        calls.append(cfg)
        torch.save({"backbone.x": torch.tensor([float(cfg.seed)])}, out_path)
        return {"train/loss": 0.0}

    return fake


def test_stage1_checkpoint_is_built_once_and_reused(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(target_mod, "pretrain_target", _fake_builder(calls))
    cfg = tiny()
    a = stage1_checkpoint(cfg, tmp_path)
    b = stage1_checkpoint(cfg, tmp_path)
    # fields that do not change the weights share the file
    c = stage1_checkpoint(tiny(device="auto", labels_per_class=4, eval_every=2), tmp_path)
    assert a == b == c and len(calls) == 1
    assert a.name.startswith(cfg.tag()) and a.name.endswith(f"-{stage1_key(cfg)[:16]}.pt")
    assert a.with_suffix(".json").exists()


def test_different_configs_get_different_files(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(target_mod, "pretrain_target", _fake_builder(calls))
    paths = {
        stage1_checkpoint(tiny(**change), tmp_path)
        for change in (
            {},
            {"seed": 1},
            {"l2_init": 0.0},
            {"objective": "moco_v2"},
            {"tau_base": 0.99},
            {"image_size": 48},
        )
    }
    assert len(paths) == 6 and len(calls) == 6

    # an unset projector size keys like the objective's default written out
    assert stage1_key(TargetPretrainConfig()) == stage1_key(
        TargetPretrainConfig(proj_dim=256, proj_hidden=4096)
    )


def test_real_stage1_build_loads_into_a_backbone(tmp_path):
    path = stage1_checkpoint(tiny(epochs=1, max_train_batches=1), tmp_path)
    load_backbone_weights(create_backbone("small_cnn"), path, format="ftsweep")


def test_failed_build_leaves_nothing_half_written_and_later_callers_get_the_reason(tmp_path, monkeypatch):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    cfg = tiny(pretrained=str(bad))
    cache = tmp_path / "cache"
    with pytest.raises(CachedBuildError) as first:
        stage1_checkpoint(cfg, cache)
    files = sorted(p.name for p in (cache / "stage1").iterdir())
    assert not any(f.endswith(".pt") or f.endswith(".tmp") or f.endswith(".json") for f in files), files
    assert any(f.endswith(".failed") for f in files)
    calls: list = []
    monkeypatch.setattr(target_mod, "pretrain_target", _fake_builder(calls))
    with pytest.raises(CachedBuildError, match="failed earlier") as later:
        stage1_checkpoint(cfg, cache)
    assert calls == []
    reason = str(first.value).split("failed: ", 1)[1].splitlines()[0]
    assert reason in str(later.value)


_WORKER = textwrap.dedent(
    """
    import hashlib, os, sys, time
    from pathlib import Path
    import ftsweep.pretrain.target as tm

    cache, build_log, me, other = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    real = tm.pretrain_target

    def counted(cfg, out_path, *, log=True):
        with open(build_log, "a") as f:
            f.write(f"build {os.getpid()}\\n")
        time.sleep(1.0)  # widen the window in which the other process asks too
        return real(cfg, out_path, log=False)

    tm.pretrain_target = counted
    cfg = tm.TargetPretrainConfig(epochs=1, batch_size=16, proj_dim=8, proj_hidden=16,
                                  pred_hidden=16, max_train_batches=1, device="cpu")
    (cache / f"ready-{me}").touch()
    deadline = time.time() + 120
    while not (cache / f"ready-{other}").exists():
        assert time.time() < deadline, "the other process never started"
        time.sleep(0.01)
    path = tm.stage1_checkpoint(cfg, cache)
    print(path, hashlib.sha256(path.read_bytes()).hexdigest())
    """
)


def test_two_concurrent_processes_build_the_checkpoint_once(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "builds.log"
    cache.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(cache), str(log), me, other],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(out.strip().splitlines()[-1])
    assert log.read_text().count("build") == 1
    assert outs[0] == outs[1]
    path, digest = outs[0].split()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    leftovers = [p.name for p in (cache / "stage1").iterdir() if p.name.endswith((".tmp", ".failed"))]
    assert leftovers == []
