"""All jobs of a spec in one Tune experiment, each with its own searcher and scheduler.

A spec's (method, dataset) jobs share the cluster: one ``tune.Tuner`` runs every trial, so the
trials in flight are ``min(trials ready, what the cluster holds)`` across jobs, and actors are
reused across jobs where the resources match. Each trial's config names its job (:data:`JOB_KEY`);
:class:`JobSearcher` routes suggestions and results to the job's own searcher and
:class:`JobScheduler` routes every scheduling event to the job's own scheduler — ASHA never ranks
a CIFAR trial against a CUB trial, nor does Optuna mix two jobs' objectives. Both are Tune's
public ``Searcher`` / ``TrialScheduler`` interfaces, so ``max_concurrent_trials`` (Tune's
``ConcurrencyLimiter`` around the searcher) holds for every searcher, and Tune saves and restores
their state with the experiment (``Tuner.restore``).

:class:`VariantSearcher` is the grid / random searcher of one job: the grid's cells × ``num_samples``
random draws (the same draws for every cell and seed, so cells and seeds pair) × the spec's seeds.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.sample import Domain

from ftsweep.config.space import is_grid

__all__ = ["JOB_KEY", "JobScheduler", "JobSearcher", "VariantSearcher", "variants"]

from ftsweep.methods.base import JOB_KEY


def variants(
    space: Mapping[str, Any],
    seeds: Sequence[int],
    num_samples: int,
    random_state: int,
    points: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every trial config of one grid / random job, in run order.

    For each of ``num_samples`` samples the random domains (``tune.uniform`` …) are drawn once,
    then every grid cell (the first axis varies slowest) is paired with each seed.
    ``points`` (``points_to_evaluate``) come first: in a grid they are cells moved to the front
    (the trials are the same); in a space of random domains they are the first samples (the
    other ``num_samples − len(points)`` are drawn). A space mixing both is refused at parse.
    """
    rng = np.random.RandomState(random_state)
    fixed = {k: v for k, v in space.items() if not is_grid(v) and not isinstance(v, Domain)}
    grid = [(k, list(v["grid_search"])) for k, v in space.items() if is_grid(v)]
    domains = [(k, v) for k, v in space.items() if isinstance(v, Domain)]
    samples: list[dict[str, Any]] = [dict(p) for p in points] if domains else []
    samples += [
        {k: d.sample(random_state=rng) for k, d in domains} for _ in range(num_samples - len(samples))
    ]
    cells = [
        dict(zip((k for k, _ in grid), cell, strict=True))
        for cell in itertools.product(*(v for _, v in grid))
    ]
    if grid and points:
        first = [c for p in points for c in cells if c == {k: p[k] for k, _ in grid}]
        first = [c for i, c in enumerate(first) if c not in first[:i]]
        cells = first + [c for c in cells if c not in first]
    out = []
    for draws in samples:
        for cell in cells:
            out.extend({**fixed, **cell, **draws, "seed": seed} for seed in seeds)
    return out


class _PickledState:
    """Tune's ``save`` / ``restore`` of a router: its whole state (its jobs' searchers or
    schedulers included) pickled to the one file Tune names."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


class VariantSearcher(Searcher):
    """Grid and random search of one job: :func:`variants`, one per suggestion, then FINISHED."""

    def __init__(self, configs: Sequence[Mapping[str, Any]], metric: str, mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self.configs = [dict(c) for c in configs]
        self.next = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return dict(self.configs[self.next - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def get_state(self) -> dict:
        return {"configs": self.configs, "next": self.next}

    def set_state(self, state: dict) -> None:
        self.configs, self.next = state["configs"], state["next"]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))


class JobSearcher(_PickledState, Searcher):
    """One searcher per job behind Tune's single ``search_alg``.

    Suggestions go round the jobs (a job whose searcher has nothing now — an Optuna study waiting
    for results, a ``Repeater`` between seeds — is skipped), each merged with the job's fixed
    values and tagged with :data:`JOB_KEY`; results and completions go back to the job that
    suggested the trial.

    Args:
        searchers: job name → that job's searcher (built with ``metric`` and ``mode``).
        fixed: job name → the job's fixed config values.
        budgets: job name → how many trials that job runs (a searcher such as Optuna's has no
            end of its own); None = until the job's searcher says FINISHED.
    """

    def __init__(
        self,
        searchers: Mapping[str, Searcher],
        fixed: Mapping[str, Mapping[str, Any]],
        metric: str,
        mode: str,
        budgets: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.searchers = dict(searchers)
        self.fixed = {k: dict(v) for k, v in fixed.items()}
        self.budgets = dict(budgets or {})
        self.suggested = dict.fromkeys(self.searchers, 0)
        self.order = list(self.searchers)
        self.finished: set[str] = set()
        self.owner: dict[str, str] = {}
        self.turn = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # each job's searcher already has its space, metric and mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        for i in range(len(self.order)):
            job = self.order[(self.turn + i) % len(self.order)]
            if job in self.finished:
                continue
            if job in self.budgets and self.suggested[job] >= self.budgets[job]:
                self.finished.add(job)
                continue
            out = self.searchers[job].suggest(trial_id)
            if out == Searcher.FINISHED:
                self.finished.add(job)
                continue
            if out is None:
                continue
            self.turn = (self.turn + i + 1) % len(self.order)
            self.owner[trial_id] = job
            self.suggested[job] += 1
            return {**self.fixed[job], **out, JOB_KEY: job}
        return Searcher.FINISHED if len(self.finished) == len(self.order) else None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        job = self.owner.get(trial_id)
        if job is not None:
            self.searchers[job].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        job = self.owner.get(trial_id)
        if job is not None:
            self.searchers[job].on_trial_complete(trial_id, result=result, error=error)


class _JobView:
    """A Tune controller seen by one job's scheduler: ``get_trials`` lists that job's trials only
    (so a FIFO-based scheduler picks among its own), everything else is the controller's."""

    def __init__(self, controller: Any, job: str) -> None:
        self._controller, self._job = controller, job

    def get_trials(self) -> list:
        return [t for t in self._controller.get_trials() if t.config.get(JOB_KEY) == self._job]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


class JobScheduler(_PickledState, TrialScheduler):
    """One trial scheduler per job behind Tune's single ``scheduler``.

    Every event of a trial goes to its job's scheduler, which sees only that job's trials; a new
    trial to run is asked of the jobs in turn.
    """

    def __init__(self, schedulers: Mapping[str, TrialScheduler]) -> None:
        super().__init__()
        self.schedulers = dict(schedulers)

    def _route(self, controller: Any, trial: Any) -> tuple[TrialScheduler, _JobView]:
        job = trial.config[JOB_KEY]
        return self.schedulers[job], _JobView(controller, job)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return all(s.set_search_properties(metric, mode, **spec) for s in self.schedulers.values())

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        sched, view = self._route(tune_controller, trial)
        sched.on_trial_add(view, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        sched, view = self._route(tune_controller, trial)
        sched.on_trial_error(view, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        sched, view = self._route(tune_controller, trial)
        return sched.on_trial_result(view, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        sched, view = self._route(tune_controller, trial)
        sched.on_trial_complete(view, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        sched, view = self._route(tune_controller, trial)
        sched.on_trial_remove(view, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """Of the trials the jobs' schedulers would run now, the one added first (idempotent,
        as Tune requires; the jobs' trials are interleaved when they are suggested)."""
        order = {id(t): i for i, t in enumerate(tune_controller.get_trials())}
        picks = [s.choose_trial_to_run(_JobView(tune_controller, job)) for job, s in self.schedulers.items()]
        picks = [t for t in picks if t is not None]
        return min(picks, key=lambda t: order.get(id(t), len(order))) if picks else None

    def debug_string(self) -> str:
        return "; ".join(f"{job}: {s.debug_string()}" for job, s in self.schedulers.items())
