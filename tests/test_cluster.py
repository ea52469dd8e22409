"""The cluster path: a real local head (`ray start --head`, token auth on), a `--smoke` sweep
submitted with `ray job submit --working-dir .`, MLflow checked, head stopped.

Runs last in the session (see conftest): `ray stop` ends every Ray process on the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not (BIN / "ray").exists(), reason="ray CLI not installed"),
]

SPEC = """
name: cluster_smoke
method: scl
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, lr: 0.05, temperature: 0.2, labels_per_class: 3}
search_space: {lambda_: [0.2, 0.8]}
seeds: [0]
resources: {cpu: 1, gpu: 0}
smoke: {pretrained: none}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    env.pop("RAY_ADDRESS", None)
    return env


def _ray(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ray"), *args], env=_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def head(tmp_path):
    gcs, dash = _free_port(), _free_port()
    start = [
        "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--include-dashboard", "true",
        "--disable-usage-stats",
    ]  # fmt: skip
    for _attempt in range(2):  # "node timed out during startup" happens on 2 cores: retry the start once
        proc = _ray(*start)
        if proc.returncode == 0:
            break
        _ray("stop", "--force")
        time.sleep(2)
    else:
        pytest.fail(f"ray start failed twice:\n{proc.stdout}\n{proc.stderr}")
    try:
        yield f"http://127.0.0.1:{dash}"
    finally:
        _ray("stop", "--force", timeout=120)


def test_ray_job_submit_smoke_sweep(head: str, tmp_path: Path) -> None:
    from analysis.runs import load_runs

    spec = tmp_path / "cluster_smoke.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert (Path.home() / ".ray" / "auth_token").exists() or shutil.which("ray")
    proc = subprocess.run(
        [
            str(BIN / "ray"), "job", "submit", "--address", head, "--working-dir", str(REPO),
            "--", "python", "-m", "ftsweep", "run", str(spec), "--smoke",
            "--tracking-uri", uri, "--results", str(tmp_path / "results"),
        ],
        env=_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "succeeded" in (proc.stdout + proc.stderr)
    runs = load_runs("cluster_smoke-smoke", uri, status=None)
    assert len(runs) == 2
    assert set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["lambda_"]) == [0.2, 0.8]
    assert runs["test/acc"].notna().all()
