"""MLflowTrialLogger without Ray: dedupe of steps after a restore, params, status."""

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
