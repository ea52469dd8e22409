"""The build-once stage-1 checkpoint cache: one file per distinct config, failures recorded,
one builder across concurrent processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import ftsweep.pretrain.stage1 as stage1_mod
from ftsweep.backbones import create_backbone, load_backbone_weights
from ftsweep.cache import CachedBuildError
from ftsweep.pretrain import TargetPretrainConfig, stage1_checkpoint, stage1_key
from ftsweep.pretrain.trainer import run_settings

REPO = Path(__file__).resolve().parents[2]


def _fake_builder(calls: list):
    def fake(cfg, out_path, *, log=True):
        calls.append(cfg)
        torch.save({"backbone.x": torch.tensor([float(cfg.seed)])}, out_path)
        return {"train/loss": 0.0}

    return fake


def test_stage1_checkpoint_is_built_once_and_reused(tmp_path, monkeypatch, tiny):
    calls: list = []
    monkeypatch.setattr(stage1_mod, "pretrain_target", _fake_builder(calls))
    cfg = tiny()
    a = stage1_checkpoint(cfg, tmp_path)
    b = stage1_checkpoint(cfg, tmp_path)
    # fields that do not change the weights share the file
    c = stage1_checkpoint(tiny(device="auto", labels_per_class=4, eval_every=2), tmp_path)
    assert a == b == c and len(calls) == 1
    assert a.name.startswith(cfg.tag()) and a.name.endswith(f"-{stage1_key(cfg)[:16]}.pt")
    assert a.with_suffix(".json").exists()


def test_different_configs_get_different_files(tmp_path, monkeypatch, tiny):
    calls: list = []
    monkeypatch.setattr(stage1_mod, "pretrain_target", _fake_builder(calls))
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


def test_real_stage1_build_loads_into_a_backbone(tmp_path, tiny):
    path = stage1_checkpoint(tiny(epochs=1, max_train_batches=1), tmp_path)
    load_backbone_weights(create_backbone("small_cnn"), path, format="ftsweep")


def test_failed_build_leaves_nothing_half_written_and_later_callers_get_the_reason(
    tmp_path, monkeypatch, tiny
):
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
    monkeypatch.setattr(stage1_mod, "pretrain_target", _fake_builder(calls))
    with pytest.raises(CachedBuildError, match="failed earlier") as later:
        stage1_checkpoint(cfg, cache)
    assert calls == []
    reason = str(first.value).split("failed: ", 1)[1].splitlines()[0]
    assert reason in str(later.value)


_WORKER = textwrap.dedent(
    """
    import hashlib, os, sys, time
    from pathlib import Path
    import ftsweep.pretrain.stage1 as tm

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


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupted_build_leaves_no_failure_marker_and_is_rebuilt(tmp_path, monkeypatch, tiny, interrupt):
    def interrupted(cfg, out_path, *, log=True):
        Path(out_path).write_bytes(b"half")
        raise interrupt()  # Ctrl-C during stage 1

    monkeypatch.setattr(stage1_mod, "pretrain_target", interrupted)
    with pytest.raises(interrupt):
        stage1_checkpoint(tiny(), tmp_path)
    assert sorted(p.name for p in (tmp_path / "stage1").iterdir()) == []
    calls: list = []
    monkeypatch.setattr(stage1_mod, "pretrain_target", _fake_builder(calls))
    path = stage1_checkpoint(tiny(), tmp_path)
    assert path.exists() and len(calls) == 1


def test_run_settings_key_apart_only_when_they_change_the_weights():
    base = TargetPretrainConfig()
    # ``auto`` precision / device views are what ran before the fields existed: old keys hold
    assert stage1_key(base) == "6736665161c26fc0b260e164769fa0e28dd5ba6f0033b1cc8b67bc4df2c2df29"
    assert stage1_key(TargetPretrainConfig(channels_last=True)) == stage1_key(base), "memory layout only"
    keys = {
        stage1_key(TargetPretrainConfig(**c))
        for c in ({}, {"precision": "bf16"}, {"precision": "fp32"}, {"gpu_augment": True})
    }
    assert len(keys) == 4


def test_auto_run_settings_key_as_what_they_resolve_to_on_the_training_device():
    auto = TargetPretrainConfig()
    # a CPU trains ``auto`` in fp32 with per-image views: the key before the fields existed
    assert run_settings(auto) == {"precision": "fp32", "device_views": False}
    assert stage1_key(auto, **run_settings(auto)) == stage1_key(auto)
    # a GPU's bf16 / device views: the key of those values written out, not the CPU's
    gpu = stage1_key(auto, precision="bf16", device_views=True)
    assert gpu == stage1_key(TargetPretrainConfig(precision="bf16", gpu_augment=True), precision="bf16")
    assert gpu != stage1_key(auto)
    assert stage1_key(auto, precision="bf16", device_views=False) == stage1_key(
        TargetPretrainConfig(precision="bf16")
    )
    # an explicit value is keyed as written whatever the device resolves
    explicit = TargetPretrainConfig(precision="fp16", gpu_augment=True)
    assert stage1_key(explicit, precision="fp16", device_views=True) == stage1_key(explicit)


def test_small_per_image_ssl_views_key_apart_from_the_older_crop_scale():
    # at <= 64 px the byol1/byol2/simclr recipes cropped (0.35, 1) before SSL_CROP_SCALE: a CIFAR
    # stage 1 at 32 px keys apart from its older entry; 96 px (0.08 already) and the in-memory
    # digits (batch views, unchanged: the pinned key above) keep theirs
    old_cifar32 = "a9b9584a289b61bdcd9629dc3c2de4c6ca2f0c42be518651a9f29b41ea8e4d6c"
    assert stage1_key(TargetPretrainConfig(dataset="cifar10")) != old_cifar32
    cifar96 = "aafd314a90d9c4abda38bb26caadc9de290dd48aebf4c796a391ccd75fe3e65e"
    assert stage1_key(TargetPretrainConfig(dataset="cifar10", image_size=96)) == cifar96
    from ftsweep.pretrain.simclr import SimCLRConfig

    assert SimCLRConfig().tag() == "digits-small_cnn-simclr-e60-b256-s0"
    assert SimCLRConfig(dataset="cifar10").tag() == "cifar10-small_cnn-simclr-e60-b256-s0-crop008"
