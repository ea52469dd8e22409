"""The progress line: counts, best so far, ETA from the finished trials' pace."""

from __future__ import annotations

from types import SimpleNamespace

from ftsweep.progress import Progress, progress_line


def test_progress_line_counts_best_and_eta() -> None:
    line = progress_line(
        total=10, done=3, running=2, failed=1, best=0.91234, metric="best/val/acc", elapsed=120
    )
    # 4 ended in 120 s, 6 to go: 180 s
    assert line == (
        "ftsweep: 3/10 done, 2 running, 4 pending, 1 failed | best best/val/acc 0.9123 | elapsed 2m00s, ETA 3m00s"
    )
    assert progress_line(total=2, done=0, running=1, failed=0, best=None, metric="m", elapsed=5).endswith(
        "best m – | elapsed 5s, ETA ?"
    )


def test_progress_callback_reads_trial_states(monkeypatch, capsys) -> None:
    monkeypatch.setenv("FTSWEEP_PROGRESS_S", "0")
    trials = [
        SimpleNamespace(trial_id="a", status="TERMINATED", last_result={"best/val/acc": 0.5, "done": True}),
        SimpleNamespace(trial_id="b", status="TERMINATED", last_result={"error/failed": 1.0}),
        SimpleNamespace(trial_id="c", status="RUNNING", last_result={"best/val/acc": 0.7}),
        SimpleNamespace(trial_id="d", status="ERROR", last_result={}),
        SimpleNamespace(trial_id="e", status="PENDING", last_result={}),
    ]
    p = Progress(total=6, metric="best/val/acc", mode="max")
    p.on_step_end(1, trials)
    out = capsys.readouterr().out
    assert out.startswith("ftsweep: 1/6 done, 1 running, 2 pending, 2 failed | best best/val/acc 0.7 |"), out
    Progress(total=6, metric="best/val/acc", mode="min").on_step_end(1, trials)
    assert "best best/val/acc 0.5 |" in capsys.readouterr().out


def test_trials_an_interrupt_stopped_are_not_done(monkeypatch, capsys) -> None:
    """A Ctrl-C stops every trial through Tune, which marks the running and the pending ones
    TERMINATED though they did not end (their last result has no ``done``): the last line read
    "6/6 done" over a summary of 2 finished, 4 not ended. A trial a scheduler stopped while
    paused (HyperBand) has no final result either, but Tune reports it complete."""
    monkeypatch.setenv("FTSWEEP_PROGRESS_S", "0")
    trials = [
        SimpleNamespace(trial_id="a", status="TERMINATED", last_result={"best/val/acc": 0.5, "done": True}),
        SimpleNamespace(trial_id="b", status="TERMINATED", last_result={"best/val/acc": 0.6}),  # interrupted
        SimpleNamespace(trial_id="c", status="TERMINATED", last_result={}),  # pending when interrupted
        SimpleNamespace(trial_id="d", status="TERMINATED", last_result={"best/val/acc": 0.4}),
    ]
    p = Progress(total=4, metric="best/val/acc", mode="max")
    p.on_trial_complete(3, trials, trials[3])  # stopped while paused
    p.on_experiment_end(trials)
    assert capsys.readouterr().out.startswith("ftsweep: 2/4 done, 0 running, 2 pending, 0 failed |")


def test_progress_hooks_are_tune_callback_hooks() -> None:
    """The hooks Progress implements are ones Tune calls (a misnamed hook is never called)."""
    from ray.tune import Callback

    own = {n for n in vars(Progress) if n.startswith("on_")}
    assert own and own <= {n for n in dir(Callback) if n.startswith("on_")}, own
