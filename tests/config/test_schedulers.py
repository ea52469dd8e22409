"""``scheduler:`` and its options (``asha:``, ``hyperband:``): checked at parse, built by the
runner with time ``sched/epoch``."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

from ftsweep.config import ConfigError
from ftsweep.config.spec import parse_spec
from ftsweep.runner import job_scheduler

RAW = {"name": "t", "method": "scl", "search_space": {"lambda_": [0.1, 0.5]}, "config": {"epochs": 27}}


def test_hyperband_is_tunes_with_sched_epoch_and_the_longest_trial() -> None:
    sched = job_scheduler(parse_spec({**RAW, "scheduler": "hyperband"}))
    assert isinstance(sched, HyperBandScheduler)
    assert sched._time_attr == "sched/epoch" and sched._max_t_attr == 27 and sched._eta == 3
    sched = job_scheduler(parse_spec({**RAW, "scheduler": "hyperband", "hyperband": {"reduction_factor": 2}}))
    assert sched._eta == 2


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"scheduler": "asha", "asha": {"grace": 3}}, "asha.grace", "allowed keys: grace_period"),
        ({"scheduler": "asha", "asha": {"reduction_factor": 1}}, "asha.reduction_factor", ">= 2"),
        ({"scheduler": "asha", "asha": {"grace_period": 0.5}}, "asha.grace_period", "integer >= 1"),
        ({"scheduler": "hyperband", "hyperband": {"grace_period": 3}}, "hyperband.grace_period", "allowed"),
        ({"scheduler": "hyperband", "max_concurrent_trials": 2}, "max_concurrent_trials", "paused trial"),
        ({"scheduler": "hyperband", "seeds": [0, 1]}, "scheduler", "several seeds (2)"),
    ],
)
def test_bad_scheduler_options_are_refused_at_parse(extra, field, words) -> None:
    with pytest.raises(ConfigError) as e:
        parse_spec({**RAW, **extra})
    assert e.value.field == field and words in str(e.value)


def test_asha_options_reach_tunes_scheduler() -> None:
    sched = job_scheduler(parse_spec({**RAW, "scheduler": "asha", "asha": {"grace_period": 2, "max_t": 9}}))
    assert isinstance(sched, ASHAScheduler) and sched._max_t == 9
    assert [m for m, _ in sched._brackets[0]._rungs] == [6, 2]  # grace 2, then × 3 below max_t


def test_max_t_is_the_longest_searched_epochs() -> None:
    # a searched epochs axis: max_t from its largest value, not the config's 30 (a 40-epoch
    # trial would stop at 30); a range's upper end (exclusive for integers)
    from ray import tune

    raw = {**RAW, "config": {}, "scheduler": "asha"}
    sched = job_scheduler(parse_spec({**raw, "search_space": {"epochs": [2, 40]}}))
    assert sched._max_t == 40
    sched = job_scheduler(
        parse_spec({**raw, "searcher": "random", "search_space": {"epochs": tune.randint(5, 50)}})
    )
    assert sched._max_t == 49
