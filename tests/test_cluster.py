"""The cluster path: a real local head (`ray start --head`, token auth on), a `--smoke` sweep
submitted with `ray job submit --working-dir .`, MLflow checked, head stopped.

Runs last in the session (see conftest), after the session's private Ray instance.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def _head(tmp_path: Path, *resources: str) -> Iterator[tuple[str, str]]:
    """`ray start --head --block` in its own session, every port explicit and free (the worker
    ports moved above them), its own temp dir; stopped by killing that session's process tree —
    never `ray stop`, which would end every Ray instance on the machine. Yields the job API's
    and the GCS's addresses."""
    gcs, dash, agent, agent_grpc, rt_env, metrics, client = (_free_port() for _ in range(7))
    temp = Path(tempfile.mkdtemp(prefix="rayhead-", dir="/tmp"))  # short: unix socket paths
    cmd = [
        str(BIN / "ray"), "start", "--head", "--block", *(resources or ("--num-cpus", "2")),
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
        yield address, f"127.0.0.1:{gcs}"
    finally:
        tree = _tree(proc.pid)  # collected first: workers start their own sessions
        # SIGTERM to `ray start` alone: it drains the node through its GCS and stops its
        # processes (~3 s); a SIGTERM to the whole group ends the GCS first, and `ray start`
        # then waits a minute for it before giving up. SIGKILL for whatever is left.
        for kill, sig, wait in ((os.kill, signal.SIGTERM, 30), (os.killpg, signal.SIGKILL, 10)):
            try:
                kill(proc.pid, sig)
                proc.wait(wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for pid in tree + _tree(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


@pytest.fixture
def head(tmp_path):
    with _head(tmp_path) as (address, _):
        yield address


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


FILL_SPEC = """
name: fill
methods:
  - method: ce
  - method: scl
  - {method: ce, name: ce2}
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 30, labels_per_class: 10, batch_size: 16, max_train_batches: 6, max_eval_batches: 2, device: cpu}
seeds: [0, 1]
resources: {cpu: 1, gpu: 0.5}
"""


def test_a_spec_fills_every_declared_gpu_and_refuses_what_no_node_has(tmp_path: Path) -> None:
    """A head declaring 4 GPUs (this machine has none; trials run with device: cpu): 3 jobs × 2
    trials at gpu 0.5 are all in flight at once (the ideal: 6 ≤ 8 GPU slots and 8 CPUs), across
    jobs; a trial asking for more GPUs than any node has is an exit-2 error before anything is
    written."""
    from mlflow.tracking import MlflowClient

    spec = tmp_path / "fill.yaml"
    spec.write_text(textwrap.dedent(FILL_SPEC))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with _head(tmp_path, "--num-cpus", "8", "--num-gpus", "4") as (_, gcs):
        run = [str(BIN / "ftsweep"), "run", str(spec), "--address", gcs, "--tracking-uri", uri]
        run += ["--results", str(tmp_path / "results")]
        too_big = tmp_path / "big.yaml"
        too_big.write_text(textwrap.dedent(FILL_SPEC).replace("gpu: 0.5", "gpu: 8"))
        refused = subprocess.run(
            [*run[:2], str(too_big), *run[3:]], env=_env(), capture_output=True, text=True, timeout=300
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert (
            "resources: {'cpu': 1.0, 'gpu': 8.0} — no node of the cluster can hold one trial"
            in refused.stderr
        )
        assert "8 CPU, 4 GPU" in refused.stderr
        assert not (tmp_path / "results" / "fill").exists() and not (tmp_path / "mlflow.db").exists()
        proc = subprocess.run(run, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("fill")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.trial_id != ''")
    assert len(runs) == 6 and {r.data.tags["job"] for r in runs} == {"ce-digits", "scl-digits", "ce2-digits"}
    assert {r.data.tags["device"] for r in runs} == {"cpu"}
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs])
    peak = in_flight = 0
    for _, d in events:
        in_flight += d
        peak = max(peak, in_flight)
    assert peak == 6, peak  # trials in flight = min(ready, what the cluster holds), across jobs
