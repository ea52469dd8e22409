"""``searcher: optuna`` (``ftsweep.optuna_search``): ordered grid axes reach Optuna as indices,
a finite grid's cell runs at most once (a repeated suggestion is told the result it got), the
sampler is TPE or a GP, and the ``optuna:`` options are checked at parse."""

from __future__ import annotations

import pickle
import warnings

import optuna
import pytest
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.repeater import TRIAL_INDEX

from ftsweep.config import ConfigError
from ftsweep.config.space import count_trials
from ftsweep.config.spec import parse_spec
from ftsweep.optuna_search import MAX_REPEATS, GridOptunaSearch, ordered_axis
from ftsweep.runner import job_searcher

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"a": {"grid_search": [0.5, 0.1, 0.3]}, "b": {"grid_search": ["x", "y"]}}


def _value(c: dict) -> float:
    return c["a"] * (2.0 if c["b"] == "x" else 1.0)


def _study(s: GridOptunaSearch) -> optuna.Study:
    return s.inner._ot_study


def test_ordered_axes_are_indices_and_other_axes_categories() -> None:
    s = GridOptunaSearch(SPACE, "m", "max", seed=0)
    c = s.suggest("t0")
    (trial,) = _study(s).trials
    dist = trial.distributions
    assert isinstance(dist["a"], optuna.distributions.IntDistribution)
    assert (dist["a"].low, dist["a"].high) == (0, 2)
    assert isinstance(dist["b"], optuna.distributions.CategoricalDistribution)
    assert c["a"] == [0.1, 0.3, 0.5][trial.params["a"]] and c["b"] == trial.params["b"]  # sorted values
    assert s.encode({"a": 0.5, "b": "y"}) == {"a": 2, "b": "y"}
    assert ordered_axis([1, 2.5]) and not ordered_axis([True, False]) and not ordered_axis([1, 1])
    assert not ordered_axis(["x", 1])


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_a_finite_grid_runs_every_cell_once_and_then_finishes(sampler: str) -> None:
    s = GridOptunaSearch(SPACE, "m", "max", seed=0, sampler=sampler, points=[{"a": 0.3, "b": "y"}])
    seen = []
    for i in range(20):
        c = s.suggest(f"t{i}")
        if c == Searcher.FINISHED:
            break
        seen.append((c["a"], c["b"]))
        s.on_trial_complete(f"t{i}", {"m": _value(c)})
        if i == 2:  # Tune saves and restores the searcher with the experiment
            s = pickle.loads(pickle.dumps(s))
    assert seen[0] == (0.3, "y")  # points_to_evaluate first
    assert sorted(seen) == sorted((a, b) for a in (0.1, 0.3, 0.5) for b in "xy")  # each cell once
    # every Optuna trial (the repeats included) was told its cell's own result
    for t in _study(s).trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        cell = {"a": [0.1, 0.3, 0.5][t.params["a"]], "b": t.params["b"]}
        assert t.value == pytest.approx(_value(cell))


def test_a_repeat_of_a_running_cell_waits_for_its_result() -> None:
    s = GridOptunaSearch({"a": {"grid_search": [1, 2]}}, "m", "max", seed=0, points=[{"a": 1}, {"a": 1}])
    assert s.suggest("t0") == {"a": 1}
    assert s.suggest("t1") == {"a": 2}  # the second point repeats the running cell: not run again
    assert s.suggest("t2") is None  # both cells running: nothing new now
    (waiting,) = s.waiting.values()  # the repeat(s) of cell 1, told nothing yet
    assert waiting
    s.on_trial_complete("t0", {"m": 0.25})
    told = [(t.state, t.value) for t in _study(s).trials if t.params["a"] == 0]
    assert len(told) == 1 + len(waiting)
    assert told == [(optuna.trial.TrialState.COMPLETE, 0.25)] * len(told)  # the repeats got t0's result
    s.on_trial_complete("t1", error=True)
    assert s.suggest("t3") == Searcher.FINISHED  # a failed cell is not tried again
    failed = [t.state for t in _study(s).trials if t.params["a"] == 1]
    assert failed == [optuna.trial.TrialState.FAIL] * len(failed)


class _Stuck:
    """An Optuna search that suggests the same cell forever (for the repeat limit)."""

    def __init__(self) -> None:
        self.asked, self.told, self.evaluated = 0, [], []

    def suggest(self, trial_id: str) -> dict:
        self.asked += 1
        return {"a": 0}

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.told.append((trial_id, result, error))

    def add_evaluated_point(self, params: dict, value: float) -> None:
        self.evaluated.append((params, value))


def test_after_max_repeats_the_first_untried_cell_runs_and_optuna_hears_of_it() -> None:
    s = GridOptunaSearch({"a": {"grid_search": [3, 1, 2]}}, "m", "max", seed=0)
    s.inner = stuck = _Stuck()
    assert s.suggest("t0") == {"a": 1}  # index 0 of the sorted values
    s.on_trial_complete("t0", {"m": 0.5})
    assert s.suggest("t1") == {"a": 3}  # grid order: the first cell not yet tried
    assert stuck.asked == 1 + MAX_REPEATS and len(stuck.told) == 1 + MAX_REPEATS
    s.on_trial_complete("t1", {"m": 0.7})
    assert stuck.evaluated == [({"a": 2}, 0.7)]


def test_random_domains_are_optunas_own_and_never_deduplicated() -> None:
    s = GridOptunaSearch(
        {"lr": tune.loguniform(1e-4, 1e-1), "b": {"grid_search": [1, 2]}}, "m", "max", seed=0
    )
    configs = []
    for i in range(6):
        c = s.suggest(f"t{i}")
        configs.append(c)
        s.on_trial_complete(f"t{i}", {"m": 1.0})
    assert all(1e-4 <= c["lr"] <= 1e-1 and c["b"] in (1, 2) for c in configs)
    assert len({c["lr"] for c in configs}) == 6


GRID = {"lambda_": [0.0, 0.5, 0.9], "temperature": [0.1, 0.5]}


def _spec(**extra):
    raw = {"name": "t", "method": "schane", "search_space": dict(GRID), "seeds": [0, 1], "searcher": "optuna"}
    return parse_spec({**raw, **extra})


def test_the_spec_picks_the_sampler_and_the_repeater_runs_each_cell_once_per_seed() -> None:
    spec = _spec(optuna={"sampler": "gp", "n_startup_trials": 2}, num_samples=50)
    (job,) = spec.jobs()
    searcher, n = job_searcher(spec, job)
    assert n == 6 * 2  # capped at the grid's 6 cells, × 2 seeds
    assert isinstance(searcher.searcher.sampler, optuna.samplers.GPSampler)
    configs = []
    for i in range(n + 1):
        c = searcher.suggest(f"t{i}")
        if not isinstance(c, dict):
            break
        configs.append((c["lambda_"], c["temperature"], c[TRIAL_INDEX]))  # the seed's index
        searcher.on_trial_complete(f"t{i}", {"best/val/acc": c["lambda_"] + c["temperature"]})
    assert len(configs) == n and len(set(configs)) == n  # each (cell, seed) once
    tpe, _ = job_searcher(_spec(), job)
    assert isinstance(tpe.searcher.sampler, optuna.samplers.TPESampler)


def test_count_trials_caps_a_finite_optuna_space_at_its_cells() -> None:
    grid = {"a": {"grid_search": [1, 2, 3]}, "b": {"grid_search": [1, 2]}}
    assert count_trials(grid, "optuna", 2, 4) == 4 * 2
    assert count_trials(grid, "optuna", 2, 10) == 6 * 2
    assert count_trials({**grid, "c": tune.uniform(0, 1)}, "optuna", 2, 10) == 10 * 2


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"optuna": {"sampler": "cmaes"}}, "optuna.sampler", "must be one of tpe, gp"),
        ({"optuna": {"n_startup_trials": 0}}, "optuna.n_startup_trials", "integer >= 1"),
        ({"optuna": {"startup": 3}}, "optuna.startup", "allowed keys: sampler, n_startup_trials"),
        ({"optuna": {"sampler": "gp"}, "searcher": "grid"}, "optuna", "only with searcher: optuna"),
    ],
)
def test_bad_optuna_options_name_the_field_value_and_what_is_allowed(extra, field, words) -> None:
    with pytest.raises(ConfigError) as e:
        _spec(**extra)
    assert e.value.field == field and words in str(e.value)
