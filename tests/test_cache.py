"""build_once: built once, reused, safe under concurrent processes, nothing half-written."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from ftsweep.cache import CachedBuildError, build_once


def _slow_build(path: str, log: str) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as fh:
            fh.write("built\n")
        time.sleep(0.5)
        tmp.write_bytes(b"artefact")

    build_once(path, build)


def test_built_once_and_reused(tmp_path: Path) -> None:
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        tmp.write_text("x")

    p = tmp_path / "a" / "art.bin"
    assert build_once(p, build) == p
    assert build_once(p, build) == p
    assert len(calls) == 1 and p.read_text() == "x"
    assert calls[0] != p  # written under a temporary name first


def test_concurrent_processes_build_once(tmp_path: Path) -> None:
    path, log = tmp_path / "art.bin", tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(path), str(log))) for _ in range(2)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(60)
        assert pr.exitcode == 0
    assert log.read_text().count("built") == 1
    assert path.read_bytes() == b"artefact"
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_build_leaves_nothing_and_records_reason(tmp_path: Path) -> None:
    p = tmp_path / "art.bin"

    def bad(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("diverged at epoch 3")

    with pytest.raises(CachedBuildError, match="diverged at epoch 3"):
        build_once(p, bad)
    assert not p.exists() and not list(tmp_path.glob(".*.tmp"))
    # a later caller gets the reason without rebuilding
    with pytest.raises(CachedBuildError, match="failed earlier: RuntimeError: diverged at epoch 3"):
        build_once(p, lambda tmp: tmp.write_text("ok"))
    assert build_once(p, lambda tmp: tmp.write_text("ok"), retry_failed=True).read_text() == "ok"
    assert not (tmp_path / "art.bin.failed").exists()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupted_build_is_not_a_failure_and_is_rebuilt(tmp_path: Path, interrupt) -> None:
    p = tmp_path / "art.bin"

    def interrupted(tmp: Path) -> None:
        tmp.write_text("half")
        raise interrupt()

    with pytest.raises(interrupt):
        build_once(p, interrupted)
    assert sorted(tmp_path.iterdir()) == []  # no artefact, no temp file, no lock, no .failed marker
    assert build_once(p, lambda tmp: tmp.write_text("ok")).read_text() == "ok"


def test_unremembered_failure_raises_the_builds_error_and_the_next_caller_builds(tmp_path: Path) -> None:
    p = tmp_path / "art.bin"

    def bad(tmp: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        build_once(p, bad, remember_failure=False)
    assert sorted(tmp_path.iterdir()) == []
    assert build_once(p, lambda tmp: tmp.write_text("ok"), remember_failure=False).read_text() == "ok"


def test_a_file_rejected_by_valid_is_rebuilt(tmp_path: Path) -> None:
    p = tmp_path / "art.bin"
    p.write_text("old")
    assert build_once(p, lambda tmp: tmp.write_text("new"), valid=lambda f: f.read_text() == "new") == p
    assert p.read_text() == "new"
    build_once(p, lambda tmp: pytest.fail("rebuilt"), valid=lambda f: f.read_text() == "new")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["art.bin"]
