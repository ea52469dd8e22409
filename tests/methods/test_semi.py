"""Stage-2 methods of the target pretraining paper (fixmatch, uda, mean_teacher, supervised):
step losses against float64 loops, masks on hand-made logits, EMA recursion, LR schedule,
save/restore, stage-1 initialisation through the build-once cache, and config errors."""

from __future__ import annotations

import dataclasses
import importlib
import math

import numpy as np
import pytest
import torch

import ftsweep.pretrain
from ftsweep.cache import CachedBuildError
from ftsweep.config import ConfigError
from ftsweep.engine import fixmatch_lr_factor, sigmoid_rampup
from ftsweep.methods.fixmatch import FixMatchConfig, FixMatchMethod
from ftsweep.methods.mean_teacher import MeanTeacherConfig, MeanTeacherMethod
from ftsweep.methods.stage2 import stage1_config
from ftsweep.methods.supervised import SupervisedConfig, SupervisedMethod
from ftsweep.methods.uda import UDAConfig, UDAMethod
from ftsweep.registry import methods

#: the module whose ``pretrain_target`` the build-once stage-1 cache calls
target_mod = importlib.import_module(ftsweep.pretrain.stage1_checkpoint.__module__)
METHODS = {
    "fixmatch": FixMatchMethod,
    "uda": UDAMethod,
    "mean_teacher": MeanTeacherMethod,
    "supervised": SupervisedMethod,
}

BASE = {
    "pretrained": "none",
    "device": "cpu",
    "batch_size": 4,
    "mu": 2,
    "labels_per_class": 3,
    "iters_per_epoch": 2,
    "epochs": 3,
    "eval_batch_size": 256,
}
SEMI = ("fixmatch", "uda", "mean_teacher")
TINY_STAGE1 = {
    "epochs": 1,
    "max_train_batches": 1,
    "batch_size": 16,
    "proj_dim": 16,
    "proj_hidden": 32,
    "pred_hidden": 32,
    "optimizer": "sgd",
}


def make(method: str, **changes):
    cfg = {**BASE, **changes}
    if method == "supervised":
        cfg.pop("mu")
    return METHODS[method](cfg)


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def semi_batch(n_l: int = 4, n_u: int = 8, num_classes: int = 10):
    y = torch.arange(n_l) % num_classes
    return (images(n_l, 1), y, torch.arange(n_l)), ((images(n_u, 2), images(n_u, 3)), -torch.ones(n_u), None)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def log_softmax_row(row: np.ndarray) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def brute_ce(logits: np.ndarray, labels: list[int]) -> float:
    return sum(-log_softmax_row(r)[int(y)] for r, y in zip(logits, labels, strict=True)) / len(labels)


def concat_logits(t, parts: list[torch.Tensor]) -> list[np.ndarray]:
    """One forward of the concatenated batch, like the method (train-mode BatchNorm)."""
    with torch.no_grad():
        out = t.model["classifier"](t.model["backbone"](torch.cat(parts)))
    return [_np(p) for p in out.split([len(p) for p in parts])]


# ---- FixMatch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_fixmatch_step_equals_ce_plus_lambda_masked_ce(temperature, assert_grads):
    t = make("fixmatch", lambda_u=0.7, temperature=temperature)
    batch = semi_batch()
    (x_l, y_l, _), ((x_w, x_s), _, _) = batch
    t.model.train()
    ll, lw, ls = concat_logits(t, [x_l, x_w, x_s])
    # threshold between the 4th and 5th largest confidences: a mixed mask of 4 / 8
    conf = sorted(max(math.exp(v) for v in log_softmax_row(r / temperature)) for r in lw)
    tau = (conf[3] + conf[4]) / 2
    t.cfg = dataclasses.replace(t.cfg, threshold=tau)
    loss, logs = t.training_step(batch)

    unsup, kept = 0.0, 0
    for rw, rs in zip(lw, ls, strict=True):
        p = [math.exp(v) for v in log_softmax_row(rw / temperature)]
        if max(p) >= tau:
            kept += 1
            unsup += -log_softmax_row(rs)[int(np.argmax(p))]
    unsup /= len(lw)
    assert kept == 4
    expected = brute_ce(ll, y_l.tolist()) + 0.7 * unsup
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(logs["unsup"].detach()) == pytest.approx(unsup, rel=1e-5, abs=1e-6)
    assert float(logs["mask"]) == pytest.approx(0.5)
    loss.backward()
    assert_grads(t.model)


def _constant_classifier(t, bias: list[float]) -> None:
    clf = t.model["classifier"]
    with torch.no_grad():
        clf.weight.zero_()
        clf.bias.copy_(torch.tensor(bias))


def test_fixmatch_mask_on_hand_made_logits():
    """Constant logits (10, 0, …, 0): confidence e¹⁰/(e¹⁰+9) ≥ 0.95, every image kept with pseudo-label 0;
    (1, 0, …, 0): confidence e/(e+9) < 0.95, nothing kept and the loss is the labeled CE."""
    t = make("fixmatch", threshold=0.95)
    batch = semi_batch()
    y_l = batch[0][1].tolist()
    _constant_classifier(t, [10.0] + [0.0] * 9)
    loss, logs = t.training_step(batch)
    ce_strong = -(10.0 - math.log(math.exp(10.0) + 9))
    ce_l = sum(-((10.0 if y == 0 else 0.0) - math.log(math.exp(10.0) + 9)) for y in y_l) / len(y_l)
    assert float(logs["mask"]) == 1.0
    # float32 log-sum-exp at 10: absolute error ~1e-6
    assert float(logs["unsup"].detach()) == pytest.approx(ce_strong, abs=3e-6)
    assert float(loss.detach()) == pytest.approx(ce_l + ce_strong, abs=1e-5)

    _constant_classifier(t, [1.0] + [0.0] * 9)
    loss, logs = t.training_step(batch)
    assert math.e / (math.e + 9) < 0.95
    assert float(logs["mask"]) == 0.0 and float(logs["unsup"].detach()) == 0.0
    ce_l = sum(-((1.0 if y == 0 else 0.0) - math.log(math.e + 9)) for y in y_l) / len(y_l)
    assert float(loss.detach()) == pytest.approx(ce_l, rel=1e-6)


# ---- UDA --------------------------------------------------------------------------------------
def test_uda_step_equals_ce_plus_masked_sharpened_kl():
    t = make("uda", lambda_u=1.3, temperature=0.4)
    batch = semi_batch()
    (x_l, y_l, _), ((x_w, x_s), _, _) = batch
    t.model.train()
    ll, lw, ls = concat_logits(t, [x_l, x_w, x_s])
    conf = sorted(max(math.exp(v) for v in log_softmax_row(r)) for r in lw)
    beta = (conf[2] + conf[3]) / 2  # mask on the un-sharpened confidence: 5 of 8 kept
    t.cfg = dataclasses.replace(t.cfg, threshold=beta)
    loss, logs = t.training_step(batch)

    unsup = 0.0
    for rw, rs in zip(lw, ls, strict=True):
        if max(math.exp(v) for v in log_softmax_row(rw)) >= beta:
            log_p = log_softmax_row(rw / 0.4)
            log_q = log_softmax_row(rs)
            unsup += sum(math.exp(a) * (a - b) for a, b in zip(log_p, log_q, strict=True))
    unsup /= len(lw)
    expected = brute_ce(ll, y_l.tolist()) + 1.3 * unsup
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(logs["mask"]) == pytest.approx(5 / 8)


# ---- Mean Teacher -----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_mean_teacher_step_with_ramp_up(variant):
    t = make("mean_teacher", lambda_u=3.0, rampup_epochs=2.0, mt_variant=variant, ema_decay=0.5)
    t.step()  # 2 optimiser steps: the teacher differs from the student, k = 2
    batch = semi_batch()
    (x_l, y_l, _), ((x_1, x_2), _, _) = batch
    t.model.train()
    ll, ls = concat_logits(t, [x_l, x_1])
    with torch.no_grad():
        lt = _np(t.ema.module["classifier"](t.ema.module["backbone"](x_2)))
    loss, logs = t.training_step(batch)

    k, ramp = t.scheduler.last_epoch, 2 * 2
    assert k == 2
    w = 3.0 * math.exp(-5 * (1 - k / ramp) ** 2)
    cons = 0.0
    for rs, rt in zip(ls, lt, strict=True):
        ps = [math.exp(v) for v in log_softmax_row(rs)]
        pt = [math.exp(v) for v in log_softmax_row(rt)]
        cons += sum((a - b) ** 2 for a, b in zip(ps, pt, strict=True))
    cons /= len(ls)
    if variant == "official":
        cons /= 10
    assert float(logs["weight_u"]) == pytest.approx(w)
    assert float(loss.detach()) == pytest.approx(brute_ce(ll, y_l.tolist()) + w * cons, rel=1e-5, abs=1e-7)
    assert cons > 0


def test_sigmoid_rampup_values():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(10, 10) == 1.0 and sigmoid_rampup(50, 10) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0


def test_mean_teacher_teacher_uses_decay_ramp():
    t = make("mean_teacher", ema_decay=0.999)
    assert t.ema.warmup and t.ema.current_decay() == pytest.approx(0.5)


# ---- supervised -------------------------------------------------------------------------------
def test_supervised_step_is_labeled_ce_and_reads_no_unlabeled_batch():
    t = make("supervised")
    (x_l, y_l, idx), _ = semi_batch()
    t.model.train()
    (ll,) = concat_logits(t, [x_l])
    loss, _ = t.training_step(((x_l, y_l, idx), None))
    assert float(loss.detach()) == pytest.approx(brute_ce(ll, y_l.tolist()), rel=1e-6)
    batches = list(t.train_batches(seed=0))
    assert len(batches) == 2 and all(u is None for _, u in batches)
    assert all(len(lab[0]) == 4 for lab, _ in batches)


def test_semi_batches_have_mu_times_b_unlabeled_images_with_two_views():
    t = make("fixmatch", mu=3)
    for (x_l, y_l, _), ((x_w, x_s), y_u, _) in t.train_batches(seed=5):
        assert x_l.shape == (4, 3, 32, 32) and (y_l >= 0).all()
        assert x_w.shape == x_s.shape == (12, 3, 32, 32)
        assert (y_u == -1).all()
        assert not torch.equal(x_w, x_s)


def test_labeled_batch_is_b_even_when_the_budget_is_smaller():
    """FixMatch's B = 64 with 40 labels: the labeled stream repeats images to fill B (one
    permutation of the budget after another) instead of shrinking the batch to the budget."""
    t = make("fixmatch", labels_per_class=1, batch_size=16, mu=1, iters_per_epoch=3)
    budget = set(t.data.labeled.indices.tolist())
    assert len(budget) == 10
    seen = []
    for (x_l, _, idx_l), _ in t.train_batches(seed=5):
        assert x_l.shape[0] == 16
        seen += idx_l.tolist()
    assert len(seen) == 48 and set(seen) == budget
    for k in range(4):  # every full pass over the budget is a permutation of it
        assert sorted(seen[10 * k : 10 * (k + 1)]) == sorted(budget)


def test_streams_are_a_function_of_the_seed_whether_the_loader_is_fresh_or_kept():
    """make_loader's per-item seeds: a trial's kept (re-seeded) streams give the same images and
    views as a fresh trial's for the same seed, another seed gives others; the unlabeled stream
    draws distinct images while within one permutation of its set."""
    t = make("fixmatch", mu=3)

    def batches(trial, seed):
        return [(lab[0], lab[2], u[0][0], u[0][1], u[2]) for lab, u in trial.train_batches(seed)]

    first = batches(t, 5)
    batches(t, 6)
    again, fresh = batches(t, 5), batches(make("fixmatch", mu=3), 5)
    for a, b, c in zip(first, again, fresh, strict=True):
        assert all(torch.equal(x, y) and torch.equal(x, z) for x, y, z in zip(a, b, c, strict=True))
    other = batches(t, 6)
    assert not torch.equal(other[0][2], first[0][2]), "another seed, other unlabeled images or views"
    drawn = torch.cat([b[4] for b in first]).tolist()
    assert len(drawn) == 2 * 12 == len(set(drawn)) and set(drawn) <= set(t.data.unlabeled.indices.tolist())


@pytest.mark.parametrize("method", SEMI)
def test_unlabeled_set_includes_the_labeled_images(method):
    t = make(method)
    labeled, unlabeled = set(t.data.labeled.indices.tolist()), set(t.data.unlabeled.indices.tolist())
    assert labeled < unlabeled
    assert not unlabeled & set(t.data.val.indices.tolist())
    without = make(method, unlabeled_includes_labeled=False)
    assert not set(without.data.labeled.indices.tolist()) & set(without.data.unlabeled.indices.tolist())


# ---- EMA, schedule, evaluation model ------------------------------------------------------------
def test_ema_is_updated_after_every_optimiser_step_and_used_for_evaluation():
    d = 0.8
    t = make("fixmatch", ema_decay=d, iters_per_epoch=3, threshold=0.0)
    init = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
    snaps: list[dict[str, torch.Tensor]] = []
    original = t.after_optimizer_step

    def spy() -> None:
        snaps.append({k: v.detach().clone() for k, v in t.model.named_parameters()})
        original()

    t.after_optimizer_step = spy
    t.step()
    assert len(snaps) == 3 and t.ema.num_updates == 3
    ema = dict(t.ema.module.named_parameters())
    for name, p0 in ((n, init[n]) for n in ema):
        expected = p0.double()
        for s in snaps:
            expected = d * expected + (1 - d) * s[name].double()
        torch.testing.assert_close(ema[name].double(), expected, rtol=1e-5, atol=1e-6)
    buffers = dict(t.ema.module.named_buffers())
    for name, b in t.model.named_buffers():
        assert torch.equal(buffers[name], b)

    x = images(5, 9)
    t.model.eval()
    with torch.no_grad():
        via_ema = t.ema.module["classifier"](t.ema.module["backbone"](x))
        online = t.logits(x)
        assert torch.equal(t.predict(x), via_ema)
        assert not torch.allclose(online, via_ema)
        t.cfg = dataclasses.replace(t.cfg, ema_eval=False)
        assert torch.equal(t.predict(x), online)


def test_fixmatch_learning_rate_follows_cos_7pi_k_over_16K():
    assert fixmatch_lr_factor(0, total_steps=100) == 1.0
    assert fixmatch_lr_factor(100, total_steps=100) == pytest.approx(math.cos(7 * math.pi / 16))
    assert fixmatch_lr_factor(40, total_steps=100) == pytest.approx(math.cos(7 * math.pi * 40 / 1600))
    assert fixmatch_lr_factor(1, total_steps=100, warmup_steps=4) == pytest.approx(0.5)
    t = make("fixmatch", lr=0.05, epochs=2, iters_per_epoch=3)
    t.step()
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * math.cos(7 * math.pi * 3 / 96))
    t = make("supervised", lr=0.05, epochs=2, iters_per_epoch=3, fixmatch_schedule=False)
    t.step()
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 3 / 6)))


# ---- save / restore ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["supervised", *SEMI])
def test_save_restore_continues_identically(method, tmp_path):
    torch.set_num_threads(1)
    a = (
        make(method, ema_decay=0.7, threshold=0.0)
        if method in ("fixmatch", "uda")
        else make(method, ema_decay=0.7)
    )
    a.step()
    a.save_checkpoint(str(tmp_path))
    ra = a.step()
    ema_a = {k: v.clone() for k, v in a.ema.module.state_dict().items()}
    n_a = a.ema.num_updates
    b = (
        make(method, ema_decay=0.7, threshold=0.0)
        if method in ("fixmatch", "uda")
        else make(method, ema_decay=0.7)
    )
    b.load_checkpoint(str(tmp_path))
    assert b.ema.num_updates == 2
    rb = b.step()
    for key in ("train/loss", "val/acc", "val/loss", "epoch", "best/epoch"):
        assert ra[key] == rb[key], key
    assert b.ema.num_updates == n_a == 4
    for k, v in b.ema.module.state_dict().items():
        assert torch.equal(v, ema_a[k]), k


# ---- stage-1 initialisation -------------------------------------------------------------------
def _counting(calls: list):
    real = target_mod.pretrain_target

    def wrapper(cfg, out_path, **kw):
        calls.append(cfg)
        return real(cfg, out_path, **kw)

    return wrapper


def _stage1_files(cache) -> list:
    return sorted((cache / "stage1").glob("*.pt"))


def test_stage1_checkpoint_is_built_once_shared_and_loaded(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(target_mod, "pretrain_target", _counting(calls))
    cfg = {"stage1": TINY_STAGE1, "cache_dir": str(tmp_path)}
    a = make("fixmatch", seed=1, **cfg)
    (path,) = _stage1_files(tmp_path)
    mtime = path.stat().st_mtime_ns
    state = torch.load(path, weights_only=True)
    for name, v in a.model["backbone"].state_dict().items():
        assert torch.equal(v, state[f"backbone.{name}"]), name
    for name, v in a.ema.module["backbone"].state_dict().items():
        assert torch.equal(v, state[f"backbone.{name}"]), name
    # another seed, budget and method share the same stage-1 config: no rebuild
    b = make("supervised", seed=2, labels_per_class=5, **cfg)
    assert len(calls) == 1
    assert _stage1_files(tmp_path) == [path] and path.stat().st_mtime_ns == mtime
    assert torch.equal(
        b.model["backbone"].state_dict()[next(iter(state)).removeprefix("backbone.")],
        state[next(iter(state))],
    )
    # a different stage-1 config is a different checkpoint
    make(
        "fixmatch", stage1={**TINY_STAGE1, "objective": "moco_v2", "moco_queue": 32}, cache_dir=str(tmp_path)
    )
    assert len(calls) == 2 and len(_stage1_files(tmp_path)) == 2
    assert calls[0].seed == 0 and calls[0].dataset == "digits" and calls[1].objective == "moco_v2"


def test_stage1_runs_like_the_trial_workers_precision_layout_views():
    cfg = FixMatchConfig.from_dict(
        {**BASE, "stage1": TINY_STAGE1, "num_workers": 3, "precision": "bf16", "gpu_augment": False}
    )
    s1 = stage1_config(cfg)
    assert (s1.num_workers, s1.precision, s1.channels_last, s1.gpu_augment) == (3, "bf16", "auto", False)
    assert stage1_config(dataclasses.replace(cfg, precision="auto", amp=False)).precision == "fp32"
    assert (
        stage1_config(dataclasses.replace(cfg, stage1={**TINY_STAGE1, "precision": "fp16"})).precision
        == "fp16"
    )


def test_failed_stage1_fails_the_trial_with_the_reason(tmp_path, monkeypatch):
    def boom(cfg, out_path, **kw):
        raise RuntimeError("stage-1 diverged (test)")

    monkeypatch.setattr(target_mod, "pretrain_target", boom)
    cfg = {"stage1": TINY_STAGE1, "cache_dir": str(tmp_path)}
    with pytest.raises(CachedBuildError, match="stage-1 diverged"):
        make("fixmatch", **cfg)
    monkeypatch.undo()
    # a later trial naming the same config reports the earlier failure instead of rebuilding
    with pytest.raises(CachedBuildError, match="failed earlier.*stage-1 diverged"):
        make("supervised", seed=3, **cfg)
    assert _stage1_files(tmp_path) == []
    assert not [p for p in (tmp_path / "stage1").iterdir() if p.name.endswith(".tmp")]


def test_stage1_cross_dataset_override_is_passed_through():
    cfg = FixMatchConfig.from_dict(
        {"labels_per_class": 3, "pretrained": "/ckpt/in.pt", "stage1": {"objective": "moco_v2", "epochs": 7}}
    )
    s1 = stage1_config(cfg)
    assert (s1.objective, s1.epochs, s1.dataset, s1.pretrained, s1.backbone) == (
        "moco_v2",
        7,
        "digits",
        "/ckpt/in.pt",
        "small_cnn",
    )
    assert s1.seed == 0 and s1.labels_per_class is None
    shared = FixMatchConfig.from_dict(
        {"labels_per_class": 3, "stage1": {"epochs": 7}, "stage1_defaults": {"epochs": 300, "lr": 0.1}}
    )
    assert (stage1_config(shared).epochs, stage1_config(shared).lr) == (7, 0.1)
    assert stage1_config(dataclasses.replace(shared, stage1=None)) is None


# ---- config errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "values", "field"),
    [
        (FixMatchConfig, {"labels_per_class": 3, "threshold": 1.5}, "threshold"),
        (FixMatchConfig, {"labels_per_class": 3, "threshold": -0.1}, "threshold"),
        (UDAConfig, {"labels_per_class": 3, "threshold": 2.0}, "threshold"),
        (FixMatchConfig, {"labels_per_class": 3, "mu": 0}, "mu"),
        (MeanTeacherConfig, {"labels_per_class": 3, "mu": 0}, "mu"),
        (FixMatchConfig, {"labels_per_class": 3, "lambda_u": -1}, "lambda_u"),
        (FixMatchConfig, {"labels_per_class": 3, "temperature": 0}, "temperature"),
        (FixMatchConfig, {}, "labels_per_class"),
        (FixMatchConfig, {"num_labels": 45}, "num_labels"),
        # the estimate where the labels are not at hand (digits' exact split: check_exact_split)
        (FixMatchConfig, {"dataset": "cifar10", "num_labels": 50000}, "num_labels"),
        (FixMatchConfig, {"dataset": "cifar10", "labels_per_class": 5000}, "labels_per_class"),
        (SupervisedConfig, {"num_labels": 45}, "num_labels"),
        (FixMatchConfig, {"labels_per_class": 3, "iters_per_epoch": 0}, "iters_per_epoch"),
        (FixMatchConfig, {"labels_per_class": 3, "ema_decay": 1.5}, "ema_decay"),
        (MeanTeacherConfig, {"labels_per_class": 3, "mt_variant": "tf"}, "mt_variant"),
        (MeanTeacherConfig, {"labels_per_class": 3, "rampup_epochs": -1}, "rampup_epochs"),
        (FixMatchConfig, {"labels_per_class": 3, "stage1": "byol"}, "stage1"),
        (FixMatchConfig, {"labels_per_class": 3, "stage1": {"objective": "simclr"}}, "stage1.objective"),
        (FixMatchConfig, {"labels_per_class": 3, "stage1": {"epochs": 0}}, "stage1.epochs"),
        (FixMatchConfig, {"labels_per_class": 3, "stage1": {"epoch": 3}}, "stage1.epoch"),
        (
            FixMatchConfig,
            {"labels_per_class": 3, "stage1": {"backbone": "torchvision.resnet18"}},
            "stage1.backbone",
        ),
        (SupervisedConfig, {"stage1": {"dataset": "imagenet21k"}}, "stage1.dataset"),
        (SupervisedConfig, {"stage1": {}, "stage1_defaults": {"tau_base": 2}}, "stage1.tau_base"),
        (SupervisedConfig, {"stage1_defaults": [1]}, "stage1_defaults"),
    ],
)
def test_bad_input_raises_config_error_naming_the_field(cls, values, field):
    with pytest.raises(ConfigError) as info:
        cls.from_dict(values)
    assert info.value.field == field


def test_stage1_mapping_survives_from_dict():
    cfg = SupervisedConfig.from_dict({"stage1": {"objective": "byol", "epochs": 300}})
    assert cfg.stage1 == {"objective": "byol", "epochs": 300}
    assert SupervisedConfig.from_dict({"stage1": None}).stage1 is None
    assert cfg.to_dict()["stage1"] == {"objective": "byol", "epochs": 300}


def test_semi_trainables_register_with_smoke_config():
    for name in ("supervised", *SEMI):
        record = methods()[name]
        assert record.smoke == {"labels_per_class": 3, "iters_per_epoch": 2}
        record.config_cls.from_dict(record.smoke)
