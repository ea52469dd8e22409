"""A sweep survives a killed driver, a killed trial worker, Ctrl-C and re-runs (real processes,
really killed), and two sweeps start at once on a new SQLite store.

One chain shares its spec and store, each case building on the last:

1. ``ftsweep run`` is SIGKILLed (with its whole process tree) once a trial has finished;
   ``--resume`` completes v1 with exactly one FINISHED run per trial and no repeated step.
2. A plain re-run of the finished spec is v2, an uninterrupted sweep: its table equals v1's and
   every cell keeps n = the number of seeds.
3. ``--new`` starts v3; every trial worker is SIGKILLed mid-trial: Tune restarts the trials from
   their checkpoints and their final metrics equal v2's, in the same MLflow runs.
4. ``--new`` starts v4 and gets SIGINT: exit 130, no run left RUNNING, the ``--resume`` command
   printed; ``--resume`` completes v4.
5. ``--new`` starts v5 and gets SIGINT twice: exit 130, the trials that ended counted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.cluster  # starts its own Ray instances: runs after the session's one

SPEC = """
name: ft
method: ce
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 8, labels_per_class: 10, batch_size: 16, max_train_batches: 6, max_eval_batches: 2}
search_space: {lr: [0.05, 0.02]}
seeds: [0, 1]
resources: {cpu: 1, gpu: 0}
checkpoint_frequency: 1
"""
TRIALS = 4


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(stat.parent.name))
    return kids


def _tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant, collected first (Ray workers start own sessions)."""
    for p in _tree(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Sweep:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.spec = tmp / "ft.yaml"
        self.spec.write_text(textwrap.dedent(SPEC))
        self.uri = f"sqlite:///{tmp}/mlflow.db"
        self.results = tmp / "results"

    def start(self, *flags: str) -> subprocess.Popen:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        cmd = [str(BIN / "ftsweep"), "run", str(self.spec), "--results", str(self.results)]
        cmd += ["--tracking-uri", self.uri, "--num-cpus", "2", *flags]
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # a background process of a non-interactive shell ignores SIGINT: give it back
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def run(self, *flags: str, timeout: float = 600) -> tuple[int, str]:
        proc = self.start(*flags)
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def trial_dirs(self, version: int) -> list[Path]:
        return sorted((self.results / "ft" / f"v{version}" / "tune").glob("ce-digits_*"))

    def progress(self, version: int) -> list[int]:
        """Epochs each started trial has checkpointed (one checkpoint per epoch, the last kept)."""
        return [
            max((int(c.name.split("_")[1]) + 1 for c in d.glob("checkpoint_*")), default=0)
            for d in self.trial_dirs(version)
        ]

    def wait_for(self, proc: subprocess.Popen, cond, what: str, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while not cond():
            if proc.poll() is not None:
                pytest.fail(
                    f"ftsweep exited ({proc.returncode}) before {what}:\n{proc.stdout.read()[-3000:]}"
                )
            if time.time() > deadline:
                _kill_tree(proc.pid)
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.2)

    def runs(self, version: int | str = "all"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        exp = client.get_experiment_by_name("ft")
        flt = "tags.trial_id != ''" + (f" and tags.sweep_version = '{version}'" if version != "all" else "")
        return client, client.search_runs([exp.experiment_id], filter_string=flt, max_results=1000)

    def open_runs(self) -> list:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        exp = client.get_experiment_by_name("ft")
        return [r for r in client.search_runs([exp.experiment_id]) if r.info.status == "RUNNING"]

    def finals(self, version: int) -> dict[tuple, dict]:
        """(lr, seed) → the final metrics of that trial's one run in ``version``."""
        client, runs = self.runs(version)
        out = {}
        for r in runs:
            key = (float(r.data.params["lr"]), int(r.data.tags["seed"]))
            assert key not in out, f"two runs of {key} in v{version}"
            steps = [m.step for m in client.get_metric_history(r.info.run_id, "val/acc")]
            assert steps == list(range(1, 9)), (key, steps)  # every epoch once, none repeated
            history = [m.value for m in client.get_metric_history(r.info.run_id, "val/loss")]
            out[key] = [r.data.metrics["test/acc"], r.data.metrics["best/val/acc"], *history]
            assert r.info.status == "FINISHED"
        assert len(out) == TRIALS
        return out

    def table(self, version: int) -> str:
        return (self.results / "ft" / f"v{version}" / "table.md").read_text()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Sweep:
    return Sweep(tmp_path_factory.mktemp("ft"))


def test_driver_sigkill_then_resume(sweep: Sweep) -> None:
    proc = sweep.start()
    sweep.wait_for(proc, lambda: 8 in sweep.progress(1), "a finished trial")
    _kill_tree(proc.pid)
    proc.wait(30)
    code, out = sweep.run()  # a plain run refuses while v1 is unfinished
    assert code == 2 and "v1 of this sweep is unfinished (its driver died)" in out and "--resume" in out, out
    code, out = sweep.run("--resume")
    assert code == 0, out
    assert "resuming v1" in out
    sweep.finals(1)  # exactly one FINISHED run per trial, every step once
    assert not sweep.open_runs()
    meta = json.loads((sweep.results / "ft" / "v1" / "version.json").read_text())
    assert meta["state"] == "finished" and meta["trials"] == TRIALS


def test_plain_rerun_is_a_new_version_with_the_same_table(sweep: Sweep) -> None:
    code, out = sweep.run()
    assert code == 0, out
    assert (sweep.results / "ft" / "v2" / "table.md").is_file()
    assert sweep.table(2) == sweep.table(1)  # the killed-and-resumed sweep = an uninterrupted one
    assert "(n=" not in sweep.table(2)  # every cell has both seeds
    v1, v2 = sweep.finals(1), sweep.finals(2)
    for key in v2:
        assert v1[key] == pytest.approx(v2[key], rel=1e-6, abs=1e-6), key
    from ftsweep.runs import load_runs

    assert len(load_runs("ft", sweep.uri)) == TRIALS  # latest version only
    assert len(load_runs("ft", sweep.uri, version="all")) == TRIALS  # identities counted once
    assert len(load_runs("ft", sweep.uri, version=1)) == TRIALS


def test_killed_trial_workers_restart_from_their_checkpoints(sweep: Sweep) -> None:
    proc = sweep.start("--new")

    def mid_trial() -> bool:
        return any(2 <= n < 6 for n in sweep.progress(3))

    sweep.wait_for(proc, mid_trial, "a trial mid-way")
    workers = [p for p in _tree(proc.pid) if _cmdline(p).startswith("ray::") and "Trainable" in _cmdline(p)]
    assert workers, "no trial worker found"
    for p in workers:
        os.kill(p, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    _, runs = sweep.runs(3)
    restored = [
        int(r.data.tags["restored_from_iteration"]) for r in runs if "restored_from_iteration" in r.data.tags
    ]
    assert restored and all(1 <= n < 8 for n in restored), restored  # from a checkpoint, not from scratch
    v2, v3 = sweep.finals(2), sweep.finals(3)
    for key in v2:
        assert v3[key] == pytest.approx(v2[key], rel=1e-6, abs=1e-6), key


def test_sigint_stops_the_sweep_and_resume_completes_it(sweep: Sweep) -> None:
    proc = sweep.start("--new")
    sweep.wait_for(proc, lambda: any(n >= 2 for n in sweep.progress(4)), "a trial under way")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert "ftsweep run" in out and "--resume" in out.split("resume with:")[-1]
    assert not sweep.open_runs(), [r.data.tags.get("mlflow.runName") for r in sweep.open_runs()]
    _, runs = sweep.runs(4)
    assert {r.info.status for r in runs} <= {"KILLED", "FINISHED"} and any(
        r.info.status == "KILLED" for r in runs
    )
    meta = json.loads((sweep.results / "ft" / "v4" / "version.json").read_text())
    assert meta["state"] == "interrupted" and meta["interrupted_by"] == "SIGINT"
    code, out = sweep.run("--resume")
    assert code == 0, out
    v2, v4 = sweep.finals(2), sweep.finals(4)
    for key in v2:
        assert v4[key] == pytest.approx(v2[key], rel=1e-6, abs=1e-6), key
    assert not sweep.open_runs()


def test_a_second_sigint_counts_the_trials_that_ended(sweep: Sweep) -> None:
    """Two Ctrl-C in a row leave at once, with no traceback, no run left RUNNING and the resume
    command; the summary counts the trials whose runs had ended (it said "0 of 4 trials
    finished" though some had)."""
    import re

    proc = sweep.start("--new")

    def one_finished() -> bool:
        return any(r.info.status == "FINISHED" for r in sweep.runs(5)[1])

    sweep.wait_for(proc, one_finished, "a trial finished")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out[-3000:]
    # a trial's run had ended FINISHED before the signals: it is counted (it was "0 of 4")
    assert int(re.search(r"v5: (\d+) of 4 trials finished", out).group(1)) >= 1, out[-3000:]
    assert not sweep.open_runs()
    assert "--resume" in out.split("resume with:")[-1]


def test_two_sweeps_at_once_on_a_new_store(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    a = Sweep(tmp_path / "a")
    (tmp_path / "b").mkdir()
    b = Sweep(tmp_path / "b")
    b.uri = a.uri  # one new store, two writers
    for s in (a, b):
        s.spec.write_text(textwrap.dedent(SPEC).replace("epochs: 8", "epochs: 1").replace("[0, 1]", "[0]"))
    procs = [a.start(), b.start()]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    _, runs = a.runs()
    assert len(runs) == 2 * 2 and {r.info.status for r in runs} == {"FINISHED"}
