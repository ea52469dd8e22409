"""The private local Ray instance ``ftsweep run`` starts: lean (no autoscaler monitor, log
monitor, dashboard API server or idle worker pool)."""

from __future__ import annotations

import pytest


def test_lean_local_node_sets_and_restores_ray_params() -> None:
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    from ftsweep.runner import _lean_local_node

    before, api_server = RayParams.__init__, Node.start_api_server
    with _lean_local_node():
        lean = RayParams(include_log_monitor=True, no_monitor=False)
        assert (lean.include_log_monitor, lean.no_monitor) == (False, True)
        assert Node.start_api_server is not api_server
        assert Node.start_api_server(object(), include_dashboard=False, raise_on_failure=False) is None
    assert (RayParams.__init__, Node.start_api_server) == (before, api_server)
    plain = RayParams()
    assert plain.no_monitor is False and plain.include_log_monitor is None

    with pytest.raises(RuntimeError), _lean_local_node():
        raise RuntimeError("ray.init failed")
    assert (RayParams.__init__, Node.start_api_server) == (before, api_server)


def test_local_instance_runs_without_monitors(ray_session) -> None:
    """The session's instance comes from ``init_ray``: GCS and raylet, no monitor processes, no
    dashboard head, and the local system config (no idle worker pool) in force."""
    from ray._private import ray_constants
    from ray._private.worker import _global_node

    from ftsweep.runner import LOCAL_SYSTEM_CONFIG

    kinds = set(_global_node.all_processes)
    assert {ray_constants.PROCESS_TYPE_GCS_SERVER, ray_constants.PROCESS_TYPE_RAYLET} <= kinds
    assert ray_constants.PROCESS_TYPE_LOG_MONITOR not in kinds
    assert ray_constants.PROCESS_TYPE_MONITOR not in kinds
    assert ray_constants.PROCESS_TYPE_DASHBOARD not in kinds
    assert _global_node.webui_url is None
    assert LOCAL_SYSTEM_CONFIG["enable_worker_prestart"] is False
    assert _global_node._ray_params._system_config == LOCAL_SYSTEM_CONFIG

    @ray_session.remote(num_cpus=1)
    def niceness() -> int:
        import os

        return os.nice(0)

    assert ray_session.get(niceness.remote()) == 0
