"""Shared fixtures: one private Ray instance per test session (start-up costs ~10 s here)."""

from __future__ import annotations

import os
from collections.abc import Callable

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# one CPU per test process, as a 1-CPU trial has: `num_workers: auto` is then 0 loader workers
# (no worker process started per method built in a test); the torch fixture below sets threads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Cluster tests run last: they start Ray heads and sweeps of their own, each in its own
    processes, after the tests that share the session's Ray instance."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)


@pytest.fixture(scope="session")
def ray_session():
    """A private local Ray instance (2 CPUs), started once, retried once on a start-up timeout."""
    import ray

    from ftsweep.runner import init_ray

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> str:
    """A short SimCLR digits checkpoint (5 epochs), built once per session."""
    from ftsweep.pretrain import SimCLRConfig, pretrain_simclr

    root = tmp_path_factory.mktemp("pretrained")
    return str(pretrain_simclr(SimCLRConfig(epochs=5), root=root, log=False))


@pytest.fixture
def no_ray(monkeypatch):
    """Ray and the sweep must not start: a bad-input test fails loudly if a check came too late."""
    import ftsweep.runner

    def boom(*a, **k):
        raise AssertionError("Ray/MLflow must not start on bad input")

    monkeypatch.setattr(ftsweep.runner, "init_ray", boom)
    monkeypatch.setattr(ftsweep.runner, "run_sweep", boom)


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(2)
    yield


def _check_grads(
    model: torch.nn.Module,
    *,
    nonzero: bool = True,
    without: Callable[[str], bool] = lambda name: False,
) -> None:
    """Every trainable parameter got a finite gradient after ``backward`` (non-zero somewhere
    with ``nonzero``), except those ``without(name)`` selects, which must have none."""
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if without(name):
            assert p.grad is None, f"{name} got a gradient"
            continue
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        if nonzero:
            assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.fixture
def assert_grads() -> Callable[..., None]:
    """``assert_grads(model, nonzero=True, without=lambda name: ...)`` (see ``_check_grads``)."""
    return _check_grads
