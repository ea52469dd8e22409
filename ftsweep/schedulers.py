"""ASHA over configurations, not seed trials: a spec with several seeds runs each configuration
once per seed, and Tune's ``ASHAScheduler`` ranks every seed trial on its own — it stops some seeds
of a configuration and keeps the others, so that configuration's seed mean is never complete
(``bench/search_efficiency.py --train-seeds 0 1 2``: no unseeded ASHA variant reached the target
on every searcher seed of any grid).

:class:`SeedGroupASHA` is asynchronous successive halving (Li et al., 2020; Tune's
``ASHAScheduler`` with one bracket) whose unit is the *configuration*: the seed trials of one
configuration (the same config but for ``seed`` / the ``Repeater``'s trial index) form a group; a
group's value at a rung is the mean of its seeds' values there so far, ranked against the other
groups' values at that rung (cutoff: the ``1 − 1/η`` quantile, as Tune's); a group below the
cutoff is stopped — the seed that reached the rung at once, the group's other seeds at their next
result. With one seed per configuration it makes the decisions of Tune's ASHA (tested).

:class:`ThresholdStopper` is the spec's ``stop:`` (``ftsweep.config.spec.STOP_RULES``): Tune's own
dict stops a trial only once a value has *risen* to its threshold, which for a loss is a
divergence guard, not "stop when it is low enough".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from ray.tune import Stopper
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

__all__ = ["SEED_KEYS", "SeedGroupASHA", "ThresholdStopper", "group_key"]

#: config keys that tell a configuration's seed trials apart
SEED_KEYS = frozenset({"seed", "__trial_index__"})


def group_key(config: Mapping[str, Any]) -> str:
    """The configuration a trial config is a seed of (its config without :data:`SEED_KEYS`), as
    canonical JSON."""
    return json.dumps({k: v for k, v in config.items() if k not in SEED_KEYS}, sort_keys=True, default=str)


class SeedGroupASHA(FIFOScheduler):
    """Asynchronous successive halving over configurations (see the module docstring).

    Args:
        time_attr: the result's time (``sched/epoch``).
        max_t: the longest trial; a trial reaching it stops (Tune's ``stop_last_trials``).
        grace_period: the first rung.
        reduction_factor: η: rungs at ``grace_period · η^k``, the top ``1/η`` of a rung go on.
        metric, mode: set by :meth:`set_search_properties` when None.
    """

    def __init__(
        self,
        time_attr: str = "sched/epoch",
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 3,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        if not (0 < grace_period <= max_t) or reduction_factor <= 1:
            raise ValueError(
                f"need 0 < grace_period ({grace_period}) <= max_t ({max_t}) and reduction_factor > 1"
            )
        super().__init__()
        self.time_attr, self.max_t, self.rf = time_attr, max_t, reduction_factor
        self._metric, self._mode = metric, mode  # TrialScheduler's, behind .metric / .mode
        n = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)  # as Tune's bracket 0
        #: descending milestones, each with group → {trial id: value at that rung}
        self.rungs: list[tuple[float, dict[str, dict[str, float]]]] = [
            (grace_period * reduction_factor**k, {}) for k in reversed(range(n))
        ]
        self.groups: dict[str, str] = {}  # trial id → group
        self.stopped: set[str] = set()  # groups stopped at a rung

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if (self._metric and metric) or (self._mode and mode):
            return False
        self._metric, self._mode = self._metric or metric, self._mode or mode
        return True

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.groups[trial.trial_id] = group_key(trial.config)

    def _value(self, result: dict) -> float | None:
        v = result.get(self._metric)
        if not isinstance(v, int | float) or not math.isfinite(v):
            return None
        return float(v) if self._mode == "max" else -float(v)

    def _record(self, trial: Any, result: dict) -> str:
        """Record the trial at the highest rung it newly reached; STOP if its group falls below
        that rung's cutoff."""
        group = self.groups.get(trial.trial_id)
        if group is None:  # a trial restored without on_trial_add
            group = self.groups[trial.trial_id] = group_key(trial.config)
        t, value = result.get(self.time_attr), self._value(result)
        if t is None or value is None:
            return TrialScheduler.CONTINUE
        for milestone, recorded in self.rungs:
            if t < milestone or trial.trial_id in recorded.get(group, {}):
                continue
            others = [float(np.mean(list(v.values()))) for g, v in recorded.items() if g != group]
            mine = {**recorded.get(group, {}), trial.trial_id: value}
            recorded[group] = mine
            if others and float(np.mean(list(mine.values()))) < np.nanpercentile(
                others, (1 - 1 / self.rf) * 100
            ):
                self.stopped.add(group)
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.time_attr not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        if result[self.time_attr] >= self.max_t:
            return TrialScheduler.STOP
        if self.groups.get(trial.trial_id) in self.stopped:  # another seed's rung stopped the group
            return TrialScheduler.STOP
        return self._record(trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if result and self.time_attr in result and self._metric in result:
            self._record(trial, result)

    def debug_string(self) -> str:
        return f"SeedGroupASHA: {len(self.stopped)} configuration(s) stopped"


class ThresholdStopper(Stopper):
    """Stop a trial at the first result where one of ``rules`` holds: ``(above, x)`` — the value
    is ``>= x`` (Tune's rule for ``stop={key: x}``), ``(below, x)`` — it is ``<= x``. A result
    without the key, or with a value that is not a finite number, stops nothing.

    Args:
        rules: result key → ``(rule, threshold)``, as ``SweepSpec.stop``.
    """

    def __init__(self, rules: Mapping[str, tuple[str, float]]) -> None:
        bad = {k: r for k, (r, _) in rules.items() if r not in ("above", "below")}
        if bad:
            raise ValueError(f"stop rules must be above or below, got {bad}")
        self.rules = dict(rules)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for key, (rule, threshold) in self.rules.items():
            value = result.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            if (value >= threshold) if rule == "above" else (value <= threshold):
                return True
        return False

    def stop_all(self) -> bool:
        return False
