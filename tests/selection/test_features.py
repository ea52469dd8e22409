"""Feature extraction and the Parquet feature cache."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ftsweep.selection import (
    cache_path,
    cached_features,
    checkpoint_digest,
    resolve_feature_layer,
)


def _make(n: int = 50, dim: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64) * 3
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    feats[0, 0] = np.float32(1e-40)  # subnormal survives bit-for-bit
    labels = rng.integers(0, 5, size=n)
    return ids, feats, labels


KEY = {"checkpoint_sha256": "ab" * 32, "dataset": "cub", "split": "train", "transform": "r256c224"}


def test_cache_round_trip_bit_identical_and_computed_once(tmp_path: Path) -> None:
    calls = []
    data = _make()

    def compute():
        calls.append(1)
        return data

    first = cached_features(tmp_path, KEY, compute)
    second = cached_features(tmp_path, dict(reversed(list(KEY.items()))), compute)
    assert len(calls) == 1
    for got, want in zip(second, data, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    for got, want in zip(first, data, strict=True):
        assert got.tobytes() == want.tobytes()
    files = list(tmp_path.iterdir())
    assert files == [cache_path(tmp_path, KEY)]  # no temp files left
    meta = pq.read_schema(files[0]).metadata
    assert b'"dataset":"cub"' in meta[b"ftsweep.selection.key"]


def test_cache_key_change_recomputes(tmp_path: Path) -> None:
    calls = []

    def compute():
        calls.append(1)
        return _make(seed=len(calls))

    a = cached_features(tmp_path, KEY, compute)
    b = cached_features(tmp_path, {**KEY, "split": "val"}, compute)
    assert len(calls) == 2
    assert not np.array_equal(a[1], b[1])
    assert len(list(tmp_path.glob("features-*.parquet"))) == 2


def test_cache_string_ids_and_float64(tmp_path: Path) -> None:
    ids = np.array(["n01/a.jpg", "n02/b.jpg"])
    feats = np.array([[1.0, 2.0], [3.0, 4.0]])
    labels = np.array([1, 2])
    cached_features(tmp_path, KEY, lambda: (ids, feats, labels))
    got = cached_features(tmp_path, KEY, lambda: pytest.fail("recomputed"))
    assert got[0].tolist() == ids.tolist()
    assert got[1].dtype == np.float64 and got[1].tobytes() == feats.tobytes()


def test_cache_failed_compute_leaves_nothing(tmp_path: Path) -> None:
    def boom():
        raise RuntimeError("extraction crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        cached_features(tmp_path, KEY, boom)
    assert list(tmp_path.iterdir()) == []


def test_cache_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    def bad_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", bad_write)
    with pytest.raises(OSError, match="disk full"):
        cached_features(tmp_path, KEY, _make)
    assert list(tmp_path.iterdir()) == []


def test_cache_rejects_bad_compute_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        cached_features(tmp_path, KEY, lambda: (np.arange(3), np.ones((2, 2)), np.arange(2)))
    with pytest.raises(ValueError, match="JSON"):
        cached_features(tmp_path, {"x": object()}, _make)


def _racing_compute_worker(cache_dir: str, log: str, out: str, barrier) -> None:
    """One trial asking for a missing key at the same time as another one."""

    def compute():
        with open(log, "a") as fh:
            fh.write("computed\n")
        time.sleep(0.5)  # widen the window in which the other process asks too
        return _make()

    barrier.wait(60)
    ids, feats, labels = cached_features(cache_dir, KEY, compute)
    np.savez(out, ids=ids, feats=feats, labels=labels)


def test_concurrent_processes_compute_a_missing_key_once(tmp_path: Path) -> None:
    cache, log = tmp_path / "cache", tmp_path / "computed.log"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"out{i}.npz" for i in range(2)]
    procs = [
        ctx.Process(target=_racing_compute_worker, args=(str(cache), str(log), str(out), barrier))
        for out in outs
    ]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(120)
        assert pr.exitcode == 0
    assert log.read_text().count("computed") == 1
    a, b = (np.load(out) for out in outs)
    for name in ("ids", "feats", "labels"):
        assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes()
    assert a["feats"].tobytes() == _make()[1].tobytes()
    assert sorted(p.name for p in cache.iterdir()) == [cache_path(cache, KEY).name]  # no lock, no temp


def test_stale_file_under_the_keys_name_is_recomputed(tmp_path: Path) -> None:
    path = cache_path(tmp_path, KEY)
    cached_features(tmp_path, {"other": 1}, _make)
    cache_path(tmp_path, {"other": 1}).rename(path)  # a file that holds another key
    got = cached_features(tmp_path, KEY, lambda: _make(seed=4))
    assert got[1].tobytes() == _make(seed=4)[1].tobytes()
    again = cached_features(tmp_path, KEY, lambda: pytest.fail("recomputed"))
    assert again[1].tobytes() == got[1].tobytes()


def test_checkpoint_digest(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    payload = b"weights" * 400_000  # > 1 MiB, several read chunks
    path.write_bytes(payload)
    assert checkpoint_digest(path) == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize(
    ("layer", "fmt", "expected"),
    [
        ("auto", "moco_v2", "projection"),  # Sec. 4.1: MoCo-v2's 128-d FC output
        ("auto", "torchvision", "penultimate"),  # Sec. 4.1: ResNet-18's 512-d penultimate
        ("auto", "simclr", "penultimate"),
        ("auto", None, "penultimate"),  # random init
        ("penultimate", "moco_v2", "penultimate"),
        ("projection", "torchvision", "projection"),  # explicit choice is kept
    ],
)
def test_resolve_feature_layer(layer: str, fmt: str | None, expected: str) -> None:
    assert resolve_feature_layer(layer, fmt) == expected


def test_resolve_feature_layer_rejects_unknown_layers() -> None:
    with pytest.raises(ValueError, match="auto, penultimate, projection.*'fc'"):
        resolve_feature_layer("fc", "moco_v2")
