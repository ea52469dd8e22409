"""The private local Ray instance ``ftsweep run`` starts: lean (no autoscaler or log monitor)."""

from __future__ import annotations

import pytest


def test_lean_local_node_sets_and_restores_ray_params() -> None:
    from ray._private.parameter import RayParams

    from ftsweep.runner import _lean_local_node

    before = RayParams.__init__
    with _lean_local_node():
        lean = RayParams(include_log_monitor=True, no_monitor=False)
        assert (lean.include_log_monitor, lean.no_monitor) == (False, True)
    assert RayParams.__init__ is before
    plain = RayParams()
    assert plain.no_monitor is False and plain.include_log_monitor is None

    with pytest.raises(RuntimeError), _lean_local_node():
        raise RuntimeError("ray.init failed")
    assert RayParams.__init__ is before


def test_local_instance_runs_without_monitors(ray_session) -> None:
    """The session's instance comes from ``init_ray``: GCS and raylet, no monitor processes."""
    from ray._private import ray_constants
    from ray._private.worker import _global_node

    kinds = set(_global_node.all_processes)
    assert {ray_constants.PROCESS_TYPE_GCS_SERVER, ray_constants.PROCESS_TYPE_RAYLET} <= kinds
    assert ray_constants.PROCESS_TYPE_LOG_MONITOR not in kinds
    assert ray_constants.PROCESS_TYPE_MONITOR not in kinds

    @ray_session.remote(num_cpus=1)
    def niceness() -> int:
        import os

        return os.nice(0)

    assert ray_session.get(niceness.remote()) == 0
