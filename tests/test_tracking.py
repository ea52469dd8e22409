"""MLflowTrialLogger without Ray: dedupe of steps after a restore, params, status; concurrent opens
of one SQLite store and retries of a flaky store."""

from __future__ import annotations

from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from ftsweep.tracking import MLflowTrialLogger, flatten, tracking_uri


def _trial(tid: str = "t1", **config):
    return SimpleNamespace(trial_id=tid, config={"dataset": "digits", "seed": 1, **config}, error_file=None)


def test_restore_does_not_duplicate_steps(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path}/m.db"
    trial = _trial(lr=0.1, stage1={"objective": "byol", "epochs": 3})
    log = MLflowTrialLogger("exp", uri, {"sweep": "s"}, {"method": "ce", "job": "ce-digits"})
    log.on_trial_start(0, [], trial)
    for it in (1, 2, 3):
        log.on_trial_result(
            0, [], trial, {"training_iteration": it, "val/acc": 10.0 * it, "epoch": float(it), "done": False}
        )
    # the trial is restored from its epoch-2 checkpoint and reports 3 again, then 4
    for it in (3, 4):
        log.on_trial_result(
            0, [], trial, {"training_iteration": it, "val/acc": 10.0 * it, "epoch": float(it)}
        )
    # metrics are buffered; a checkpoint flushes them (a restore resumes from a checkpoint)
    log.on_checkpoint(0, [], trial, None)
    # a new driver (e.g. Tuner.restore) finds the same run by its trial_id tag
    log2 = MLflowTrialLogger("exp", uri)
    log2.on_trial_result(0, [], trial, {"training_iteration": 4, "val/acc": 99.0, "epoch": 4.0})
    log2.on_trial_result(0, [], trial, {"training_iteration": 5, "val/acc": 50.0, "epoch": 5.0})
    log2.on_trial_complete(0, [], trial)

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    hist = client.get_metric_history(run.info.run_id, "val/acc")
    assert [(m.step, m.value) for m in hist] == [(1, 10.0), (2, 20.0), (3, 30.0), (4, 40.0), (5, 50.0)]
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.1" and run.data.params["stage1.objective"] == "byol"
    assert run.data.tags["method"] == "ce" and run.data.tags["seed"] == "1"


def test_error_marks_run_failed_with_reason(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path}/m.db"
    err = tmp_path / "error.txt"
    err.write_text(
        "Traceback (most recent call last):\n  ...\nftsweep.engine.loop.NonFiniteLossError: non-finite training loss nan at batch 0\n"
    )
    trial = _trial("t9")
    trial.error_file = str(err)
    log = MLflowTrialLogger("exp", uri)
    log.on_trial_start(0, [], trial)
    log.on_trial_error(0, [], trial)
    run = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("exp").experiment_id])[0]
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith(
        "ftsweep.engine.loop.NonFiniteLossError: non-finite training loss nan"
    )


def test_a_failed_trial_a_retry_finishes_loses_its_error_tag(tmp_path) -> None:
    """A trial's worker died (FAILED, tag ``error``); ``--retry-failed`` restarted it in the same
    run, which ended FINISHED still tagged with the error: ``load_runs`` showed a finished run's
    ``error``. The text stays as ``error_before_retry``."""
    from ftsweep.runs import load_runs

    uri = f"sqlite:///{tmp_path}/m.db"
    err = tmp_path / "error.txt"
    err.write_text("ray.exceptions.ActorDiedError: The actor died unexpectedly\n")
    trial = _trial("t3")
    trial.error_file = str(err)
    log = MLflowTrialLogger("exp", uri, {"sweep": "s", "sweep_version": "1"})
    log.on_trial_result(0, [], trial, {"training_iteration": 1, "val/acc": 10.0})
    log.on_trial_error(0, [], trial)
    retry = MLflowTrialLogger("exp", uri, {"sweep": "s", "sweep_version": "1"})
    retry.on_trial_result(0, [], trial, {"training_iteration": 2, "val/acc": 20.0, "done": True})
    retry.on_trial_complete(0, [], trial)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert run.info.status == "FINISHED" and "error" not in run.data.tags
    assert run.data.tags["error_before_retry"].startswith("ray.exceptions.ActorDiedError")
    assert load_runs("exp", uri)["error"].tolist() == [""]


def test_an_interrupt_of_one_spec_leaves_the_runs_of_another_sharing_its_experiment(tmp_path) -> None:
    """Two specs log to one experiment (target pretraining's Table 2 halves) and both are at v1:
    one's Ctrl-C ended KILLED the other's running trials too, as a version was found by its
    number alone."""
    uri = f"sqlite:///{tmp_path}/m.db"
    a = MLflowTrialLogger("exp", uri, {"sweep": "a", "sweep_version": "1"})
    b = MLflowTrialLogger("exp", uri, {"sweep": "b", "sweep_version": "1"})
    a.on_trial_result(0, [], _trial("ta"), {"training_iteration": 1, "val/acc": 10.0})
    b.on_trial_result(0, [], _trial("tb"), {"training_iteration": 1, "val/acc": 10.0})
    assert a.kill_open_runs() == 1
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert {r.data.tags["sweep"]: r.info.status for r in runs} == {"a": "KILLED", "b": "RUNNING"}


def test_a_resume_that_ends_every_trial_finishes_the_parents_an_interrupt_killed(tmp_path) -> None:
    """Driver 1 is interrupted mid-trial: trial, job and sweep runs end KILLED. Driver 2 (a
    resume) continues the trial's own run, which does not reopen the parents; once every trial
    has ended they end FINISHED (they stayed KILLED)."""
    from ftsweep.methods.ce import CEConfig
    from ftsweep.tracking import JobInfo

    uri = f"sqlite:///{tmp_path}/m.db"
    jobs = {"ce-digits": JobInfo("ce-digits", "ce", "ce", "digits", CEConfig, ())}
    trial = _trial("t1", _job="ce-digits")
    tags = {"sweep": "s", "sweep_version": "1"}
    first = MLflowTrialLogger("exp", uri, tags, jobs=jobs)
    first.on_trial_result(0, [], trial, {"training_iteration": 1, "val/acc": 10.0})
    first.kill_open_runs()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("exp").experiment_id

    def statuses() -> dict[str, str]:
        runs = client.search_runs([exp])
        return {r.data.tags.get("ftsweep.kind", "trial"): r.info.status for r in runs}

    assert statuses() == {"sweep": "KILLED", "job": "KILLED", "trial": "KILLED"}
    second = MLflowTrialLogger("exp", uri, tags, jobs=jobs)
    second.on_trial_result(0, [], trial, {"training_iteration": 2, "val/acc": 20.0, "done": True})
    second.on_trial_complete(0, [], trial)
    second.reconcile({"t1": ("FINISHED", SimpleNamespace(metrics={}))})
    assert statuses() == {"sweep": "FINISHED", "job": "FINISHED", "trial": "FINISHED"}


def test_flatten_and_uri(tmp_path, monkeypatch) -> None:
    assert flatten({"a": 1, "b": {"c": [1, 2]}, "__trial_index__": 0}) == {"a": "1", "b.c": "[1, 2]"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking_uri("sqlite:///x.db") == f"sqlite:///{tmp_path}/x.db"


def test_store_opened_in_a_thread_is_awaited_and_not_pickled(tmp_path) -> None:
    import pickle
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ftsweep.tracking import open_experiment

    uri = f"sqlite:///{tmp_path}/m.db"
    gate = threading.Event()

    def slow_open():
        gate.wait(10)
        return open_experiment("exp", uri)

    with ThreadPoolExecutor(1) as pool:
        store = pool.submit(slow_open)
        log = MLflowTrialLogger("exp", uri, store=store)
        # Tune pickles callbacks with its experiment state: the pending store is not part of it
        clone = pickle.loads(pickle.dumps(log))
        assert not store.done()  # neither construction nor pickling waited for the store
        gate.set()
        log.on_trial_start(0, [], _trial("a"))
        log.on_trial_complete(0, [], _trial("a"))
    assert log.experiment_id == store.result()[1]
    clone.on_trial_start(0, [], _trial("b"))  # reopens the same store by name
    clone.on_trial_complete(0, [], _trial("b"))
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert sorted(r.data.tags["trial_id"] for r in runs) == ["a", "b"]
    assert {r.info.status for r in runs} == {"FINISHED"}


_RACER = """
import sys, time
from pathlib import Path
from ftsweep.tracking import open_experiment

uri, ready, go, tag = sys.argv[1:5]
Path(ready).touch()
deadline = time.monotonic() + 120
while not Path(go).exists():
    assert time.monotonic() < deadline, "no start signal"
    time.sleep(0.005)
client, exp_id = open_experiment("e", uri)
run = client.create_run(exp_id, tags={"racer": tag})
client.log_metric(run.info.run_id, "m", 1.0, step=1)
client.set_terminated(run.info.run_id, "FINISHED")
"""


def test_concurrent_open_of_a_new_sqlite_store(tmp_path) -> None:
    """N processes that open the same new SQLite store at once all succeed, in one experiment."""
    import subprocess
    import sys
    import time

    n = 4
    uri = f"sqlite:///{tmp_path}/new.db"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, uri, str(tmp_path / f"ready{i}"), str(go), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(n)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(n)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
                p.communicate()[0] for p in procs if p.poll() is not None
            ]
            time.sleep(0.01)
        go.touch()  # every process has imported everything: they open the store together
        outs = [p.communicate(timeout=180)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * n, "\n---\n".join(outs)
    client = MlflowClient(uri)
    exps = [e for e in client.search_experiments() if e.name == "e"]
    assert len(exps) == 1
    runs = client.search_runs([exps[0].experiment_id])
    assert sorted(r.data.tags["racer"] for r in runs) == [str(i) for i in range(n)]
    assert all(r.data.metrics["m"] == 1.0 for r in runs)


class _FlakyClient:
    """A real MlflowClient whose next ``failures`` ``log_batch`` calls raise a transient error."""

    def __init__(self, client: MlflowClient, failures: int = 0) -> None:
        self.client = client
        self.failures = failures
        self.calls = 0

    def log_batch(self, *args, **kwargs):
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            from mlflow.exceptions import MlflowException

            raise MlflowException("store restarting")
        return self.client.log_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def _flaky_logger(tmp_path, **kwargs):
    from concurrent.futures import Future

    from ftsweep.tracking import open_experiment

    real, exp_id = open_experiment("exp", f"sqlite:///{tmp_path}/m.db")
    flaky = _FlakyClient(real)
    store: Future = Future()
    store.set_result((flaky, exp_id))
    log = MLflowTrialLogger("exp", f"sqlite:///{tmp_path}/m.db", store=store, retry_base_s=0.01, **kwargs)
    return log, flaky, real


def test_metrics_survive_a_flaky_store(tmp_path) -> None:
    log, flaky, real = _flaky_logger(tmp_path, flush_seconds=0.0)
    trial = _trial("f1", lr=0.1)
    flaky.failures = 2  # the params of the new run: on_trial_start retries until written
    log.on_trial_start(0, [], trial)
    assert flaky.failures == 0
    flaky.failures = 4  # metrics: a result's flush does not block, the buffer keeps them
    log.on_trial_result(0, [], trial, {"training_iteration": 1, "val/acc": 1.0})
    run_id = log.run_ids["f1"]
    assert [m.step for m in log.pending[run_id]] == [1, 1]  # val/acc and training_iteration
    for it in range(2, 2001):  # > 1000 metrics: more than one batch per flush
        log.on_trial_result(0, [], trial, {"training_iteration": it, "val/acc": float(it)})
    log.on_trial_complete(0, [], trial)  # retries until everything is written
    assert flaky.failures == 0 and not log.pending
    hist = real.get_metric_history(run_id, "val/acc")
    assert sorted(m.step for m in hist) == list(range(1, 2001))  # every step exactly once
    run = real.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.1"


def test_store_down_past_the_deadline_raises_with_the_unwritten_count(tmp_path) -> None:
    import time

    import pytest

    from ftsweep.tracking import TrackingWriteError

    log, flaky, real = _flaky_logger(tmp_path, flush_seconds=0.0, deadline_s=1.0)
    trial = _trial("f2")
    log.on_trial_start(0, [], trial)
    run_id = log.run_ids["f2"]
    flaky.failures = 10**9  # the store never comes back
    for it in (1, 2, 3):
        log.on_trial_result(
            0, [], trial, {"training_iteration": it, "val/acc": float(it), "epoch": float(it)}
        )
    t0 = time.monotonic()
    with pytest.raises(TrackingWriteError, match=rf"9 metrics of run {run_id}") as err:
        log.on_trial_complete(0, [], trial)
    assert 0.9 <= time.monotonic() - t0 < 10
    assert err.value.unwritten == {run_id: 9}
    assert len(log.pending[run_id]) == 9  # kept, not dropped: a later flush still writes them
    flaky.failures = 0
    log.on_experiment_end([])
    assert [m.step for m in real.get_metric_history(run_id, "val/acc")] == [1, 2, 3]


def test_concurrent_create_experiment_is_looked_up_again(tmp_path) -> None:
    """On a server (no lock) a create that loses the race to another process finds its experiment."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS

    from ftsweep.tracking import _experiment_id

    real = MlflowClient(f"sqlite:///{tmp_path}/m.db")

    class Racing:
        def get_experiment_by_name(self, name):
            return self.found.pop(0) if self.found else real.get_experiment_by_name(name)

        def create_experiment(self, name, artifact_location=None):
            real.create_experiment(name, artifact_location=artifact_location)  # the other process wins
            raise MlflowException("Experiment 'e' already exists.", RESOURCE_ALREADY_EXISTS)

    racing = Racing()
    racing.found = [None]
    assert _experiment_id(racing, "e") == real.get_experiment_by_name("e").experiment_id
