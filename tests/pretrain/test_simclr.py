"""The SimCLR default checkpoint is a build-once artefact: an interrupted build is rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

import ftsweep.pretrain.simclr as simclr_mod
from ftsweep.pretrain import SimCLRConfig, default_checkpoint, pretrain_simclr


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupted_pretraining_leaves_no_failure_marker_and_is_rebuilt(tmp_path, monkeypatch, interrupt):
    cfg = SimCLRConfig(epochs=1)

    def interrupted(cfg, out, final, log):
        Path(out).write_bytes(b"half")
        raise interrupt()  # Ctrl-C during `ftsweep pretrain`

    monkeypatch.setattr(simclr_mod, "_train", interrupted)
    with pytest.raises(interrupt):
        pretrain_simclr(cfg, tmp_path, log=False)
    assert sorted(tmp_path.iterdir()) == []
    calls = []

    def fake(cfg, out, final, log):
        calls.append(out)
        Path(out).write_bytes(b"weights")

    monkeypatch.setattr(simclr_mod, "_train", fake)
    path = pretrain_simclr(cfg, tmp_path, log=False)
    assert path == default_checkpoint(tmp_path, cfg) and path.read_bytes() == b"weights"
    assert pretrain_simclr(cfg, tmp_path, log=False) == path and len(calls) == 1


def test_failed_pretraining_is_remembered_until_forced(tmp_path, monkeypatch):
    from ftsweep.cache import CachedBuildError

    def bad(cfg, out, final, log):
        raise RuntimeError("nt-xent is nan")

    monkeypatch.setattr(simclr_mod, "_train", bad)
    with pytest.raises(CachedBuildError, match="nan"):
        pretrain_simclr(SimCLRConfig(epochs=1), tmp_path, log=False)
    monkeypatch.setattr(simclr_mod, "_train", lambda cfg, out, final, log: Path(out).write_bytes(b"w"))
    with pytest.raises(CachedBuildError, match="failed earlier"):
        pretrain_simclr(SimCLRConfig(epochs=1), tmp_path, log=False)
    assert pretrain_simclr(SimCLRConfig(epochs=1), tmp_path, log=False, force=True).read_bytes() == b"w"


def test_force_retrains_and_replaces_the_checkpoint(tmp_path, monkeypatch):
    cfg = SimCLRConfig(epochs=1)
    monkeypatch.setattr(simclr_mod, "_train", lambda cfg, out, final, log: Path(out).write_bytes(b"v1"))
    path = pretrain_simclr(cfg, tmp_path, log=False)
    monkeypatch.setattr(simclr_mod, "_train", lambda cfg, out, final, log: Path(out).write_bytes(b"v2"))
    assert pretrain_simclr(cfg, tmp_path, log=False).read_bytes() == b"v1"
    assert pretrain_simclr(cfg, tmp_path, log=False, force=True) == path and path.read_bytes() == b"v2"
