"""Tune's settings per sweep: set while it runs, the user's own values win, removed afterwards."""

from __future__ import annotations

import os

from ftsweep.runner import STATE_EVERY_EVENT_MAX, tune_environment

KEYS = ("TUNE_GLOBAL_CHECKPOINT_S", "TUNE_MAX_PENDING_TRIALS_PG")


def test_state_saved_every_event_for_small_sweeps_throttled_for_large(monkeypatch) -> None:
    for k in KEYS:
        monkeypatch.delenv(k, raising=False)
    with tune_environment(10) as env:
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == env["TUNE_GLOBAL_CHECKPOINT_S"] == "0"
        assert os.environ["TUNE_MAX_PENDING_TRIALS_PG"] == "200"
    assert not any(k in os.environ for k in KEYS)  # the next sweep of the process gets its own
    with tune_environment(STATE_EVERY_EVENT_MAX + 1):
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "auto"
    with tune_environment(5000):
        assert os.environ["TUNE_MAX_PENDING_TRIALS_PG"] == "2000"


def test_a_value_the_user_set_wins_and_stays(monkeypatch) -> None:
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "30")
    monkeypatch.delenv("TUNE_MAX_PENDING_TRIALS_PG", raising=False)
    with tune_environment(10) as env:
        assert env["TUNE_GLOBAL_CHECKPOINT_S"] == os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "30"
    assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "30"
    assert "TUNE_MAX_PENDING_TRIALS_PG" not in os.environ
