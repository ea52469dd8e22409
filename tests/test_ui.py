"""`ftsweep ui` serves the MLflow UI on 127.0.0.1 over the sqlite store; the test stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_on_loopback(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    port = _free_port()
    MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()  # the store a sweep made
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftsweep", "ui", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"MLflow UI did not come up (rc={proc.poll()}):\n{out[-3000:]}")
                time.sleep(1)
        # bound to loopback only
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        lines = [ln for ln in listening.splitlines() if f":{port} " in ln]
        assert lines and all("127.0.0.1:" in ln for ln in lines), lines
        assert (tmp_path / "mlflow.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)
