"""The cluster path: a real local head (`ray start --head`, token auth on), a `--smoke` sweep
submitted with `ray job submit --working-dir .`, MLflow checked, head stopped.

Runs last in the session (see conftest), after the session's private Ray instance.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
    """`ray start --head --block` in its own session, every port explicit and free, its own temp
    dir; stopped by killing that session — never `ray stop`, which would end every Ray instance
    on the machine."""
    gcs, dash, agent, agent_grpc, rt_env, metrics, client = (_free_port() for _ in range(7))
    temp = Path(tempfile.mkdtemp(prefix="rayhead-", dir="/tmp"))  # short: unix socket paths
    cmd = [
        str(BIN / "ray"), "start", "--head", "--block", "--num-cpus", "2",
        "--node-ip-address", "127.0.0.1", "--port", str(gcs),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--include-dashboard", "true",
        "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agent_grpc),
        "--runtime-env-agent-port", str(rt_env), "--metrics-export-port", str(metrics),
        "--ray-client-server-port", str(client), "--temp-dir", str(temp), "--disable-usage-stats",
    ]  # fmt: skip
    log = open(tmp_path / "head.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 180
        while True:  # up once the job API answers (token auth on)
            ok = _ray("job", "list", "--address", address, timeout=60)
            if ok.returncode == 0:
                break
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"ray head did not come up:\n{(tmp_path / 'head.log').read_text()[-3000:]}")
            time.sleep(3)
        yield address
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):  # graceful, then the rest
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_job_submit_smoke_sweep(head: str, tmp_path: Path) -> None:
    from ftsweep.runs import load_runs

    spec = tmp_path / "cluster_smoke.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert (Path.home() / ".ray" / "auth_token").exists()  # written by `ray start`: token auth is on
    submit = [
        str(BIN / "ray"), "job", "submit", "--address", head, "--working-dir", str(REPO),
        "--", "python", "-m", "ftsweep", "run", str(spec), "--smoke",
        "--tracking-uri", uri, "--results", str(tmp_path / "results"),
    ]  # fmt: skip
    deadline = time.time() + 180
    while True:  # the head's job agent registers a few seconds after `ray start` returns
        proc = subprocess.run(submit, env=_env(), capture_output=True, text=True, timeout=900)
        if "No available agent to submit job" not in proc.stdout + proc.stderr or time.time() > deadline:
            break
        time.sleep(5)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "succeeded" in (proc.stdout + proc.stderr)
    runs = load_runs("cluster_smoke-smoke", uri, status=None)
    assert len(runs) == 2
    assert set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["lambda_"]) == [0.2, 0.8]
    assert runs["test/acc"].notna().all()
