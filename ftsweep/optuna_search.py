"""Optuna as one job's searcher (``searcher: optuna``): TPE or a Gaussian process, on the spec's
grid axes as ordered indices, never running a configuration of a finite grid twice.

- **Ordered grid axes.** A numeric grid axis (``lambda_: [0.1, 0.3, 0.5]``) reaches Optuna as
  the index of its sorted values (an integer distribution), so TPE's Parzen estimators and the
  GP's kernel see that 0.3 lies between 0.1 and 0.5; as a categorical (Tune's ``choice``) each
  value would be unrelated to its neighbours. Non-numeric axes stay categorical; random domains
  (``tune.uniform`` …) are Optuna's own distributions.
- **No configuration twice.** On a space of grid axes only, a suggestion already run (or still
  running) is not run again: Optuna is told the result it got (when it comes), and asked again.
  After :data:`MAX_REPEATS` repeated suggestions in a row the first cell not yet tried (grid
  order) is run instead, so a job runs exactly ``min(num_samples, cells)`` configurations
  (``ftsweep.config.space.count_trials``).
- **Samplers.** ``tpe`` (Optuna's ``TPESampler``, its own 10 random start-up trials unless
  ``n_startup_trials``) or ``gp`` (``GPSampler``; start-up trials default to the number of
  searched axes + 1, the fewest points that span the space: on the papers' 2-axis grids of
  ``bench/search_efficiency.py`` GP's own default of 10 is random search for most of the grid).

The searcher is a Tune ``Searcher`` around Tune's ``OptunaSearch``; the runner puts a ``Repeater``
around it (one suggestion per seed group, the seeds' mean told back).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search import Searcher

from ftsweep.config.space import is_grid
from ftsweep.config.spec import OPTUNA_SAMPLERS
from ftsweep.schedulers import group_key as _key  # a configuration's key

__all__ = ["MAX_REPEATS", "GridOptunaSearch", "default_startup_trials", "ordered_axis", "startup_trials"]

#: repeated suggestions in a row before the first untried cell is run instead
MAX_REPEATS = 20


def ordered_axis(values: Sequence[Any]) -> bool:
    """Whether a grid axis is given to Optuna as ordered indices: distinct numbers (not bools)."""
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return len(nums) == len(values) and len(set(nums)) == len(nums)


def default_startup_trials(sampler: str, axes: int) -> int | None:
    """Random start-up trials before the model is used: GP, one more than the searched axes;
    TPE, Optuna's own (None)."""
    return axes + 1 if sampler == "gp" else None


def startup_trials(sampler: str, axes: int, n_startup_trials: int | None = None) -> int:
    """The random start-up trials a job's sampler runs: ``n_startup_trials`` when the spec gives
    it, else :func:`default_startup_trials`, else the Optuna sampler's own default (TPE's 10)."""
    n = n_startup_trials if n_startup_trials is not None else default_startup_trials(sampler, axes)
    if n is not None:
        return n
    import inspect

    import optuna

    cls = optuna.samplers.TPESampler if sampler == "tpe" else optuna.samplers.GPSampler
    return int(inspect.signature(cls).parameters["n_startup_trials"].default)


class GridOptunaSearch(Searcher):
    """One job's Optuna search (see the module docstring).

    Args:
        space: the job's searched entries: grid axes (``{"grid_search": [...]}``) and Tune
            domains.
        metric, mode: the spec's selection metric.
        seed: the sampler's seed.
        sampler: one of ``ftsweep.config.spec.OPTUNA_SAMPLERS``.
        n_startup_trials: random trials before the model is used (None:
            :func:`default_startup_trials`).
        points: configurations to try first (``points_to_evaluate``), in values.
    """

    def __init__(
        self,
        space: Mapping[str, Any],
        metric: str,
        mode: str,
        *,
        seed: int,
        sampler: str = OPTUNA_SAMPLERS[0],
        n_startup_trials: int | None = None,
        points: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        import optuna
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch

        if sampler not in OPTUNA_SAMPLERS:
            raise ValueError(f"sampler {sampler!r}: must be one of {', '.join(OPTUNA_SAMPLERS)}")
        super().__init__(metric=metric, mode=mode)
        #: ordered axis → its values, sorted (Optuna sees the index)
        self.values = {
            k: sorted(v["grid_search"])
            for k, v in space.items()
            if is_grid(v) and ordered_axis(v["grid_search"])
        }
        tune_space = {
            k: tune.randint(0, len(self.values[k]))
            if k in self.values
            else tune.choice(list(v["grid_search"]))
            if is_grid(v)
            else v
            for k, v in space.items()
        }
        #: every cell of an all-grid space, in grid order (None: the space has random domains)
        self.cells: list[dict[str, Any]] | None = None
        if space and all(is_grid(v) for v in space.values()):
            names = list(space)
            self.cells = [
                dict(zip(names, combo, strict=True))
                for combo in itertools.product(*(list(space[k]["grid_search"]) for k in names))
            ]
        kw = {"seed": seed, "n_startup_trials": startup_trials(sampler, len(space), n_startup_trials)}
        #: the Optuna sampler
        self.sampler = (
            optuna.samplers.TPESampler(**kw) if sampler == "tpe" else optuna.samplers.GPSampler(**kw)
        )
        self.inner = OptunaSearch(
            space=OptunaSearch.convert_search_space(tune_space),
            metric=metric,
            mode=mode,
            sampler=self.sampler,
            points_to_evaluate=[self.encode(p) for p in points] or None,
        )
        self.asked = 0
        self.live: dict[str, tuple[str, str]] = {}  # Tune trial id → (Optuna trial id, cell key)
        self.done: dict[str, dict[str, Any] | None] = {}  # cell key → result told (None: it failed)
        self.waiting: dict[str, list[str]] = {}  # running cell key → repeated Optuna trial ids
        self.extra: dict[str, dict[str, Any]] = {}  # Tune trial id → a cell run without Optuna's ask

    def encode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Values → what Optuna sees (indices on the ordered axes)."""
        return {k: self.values[k].index(v) if k in self.values else v for k, v in config.items()}

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What Optuna suggested → values."""
        return {k: self.values[k][int(v)] if k in self.values else v for k, v in params.items()}

    def _ask(self) -> tuple[str, dict[str, Any] | str | None]:
        self.asked += 1
        oid = f"o{self.asked}"
        return oid, self.inner.suggest(oid)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.cells is None:  # random domains: every suggestion is new
            oid, params = self._ask()
            if not isinstance(params, dict):
                return params
            config = self.decode(params)
            self.live[trial_id] = (oid, _key(config))
            return config
        running = {key for _, key in self.live.values()}
        if len(self.done) + len(running) >= len(self.cells):
            return Searcher.FINISHED if not running else None
        for _ in range(MAX_REPEATS):
            oid, params = self._ask()
            if not isinstance(params, dict):
                return params
            config = self.decode(params)
            key = _key(config)
            if key in self.done:  # run before: Optuna hears its result again
                self.inner.on_trial_complete(oid, result=self.done[key], error=self.done[key] is None)
            elif key in running:  # running: Optuna hears its result when it comes
                self.waiting.setdefault(key, []).append(oid)
            else:
                self.live[trial_id] = (oid, key)
                return config
        cell = next(c for c in self.cells if _key(c) not in self.done and _key(c) not in running)
        self.live[trial_id] = ("", _key(cell))
        self.extra[trial_id] = cell
        return dict(cell)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        oid = self.live.get(trial_id, ("",))[0]
        if oid:
            self.inner.on_trial_result(oid, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        oid, key = self.live.pop(trial_id)
        value = (result or {}).get(self.metric)
        ok = not error and isinstance(value, int | float) and math.isfinite(value)
        told = {self.metric: float(value)} if ok else None
        if oid:
            self.inner.on_trial_complete(oid, result=told, error=not ok)
        else:  # a cell run without Optuna's ask: told as an evaluated point
            cell = self.extra.pop(trial_id)
            if ok:
                self.inner.add_evaluated_point(self.encode(cell), float(value))
        if self.cells is not None:
            self.done[key] = told
            for w in self.waiting.pop(key, []):
                self.inner.on_trial_complete(w, result=told, error=not ok)
