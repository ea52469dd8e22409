"""``ftsweep.schedulers.SeedGroupASHA``: asynchronous successive halving over configurations.
With one seed per configuration it makes Tune's ASHA decisions event for event; with several, a
configuration's seeds are ranked by their mean and stopped together."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ftsweep.config import ConfigError
from ftsweep.config.spec import parse_spec
from ftsweep.runner import job_scheduler
from ftsweep.schedulers import SeedGroupASHA, group_key

CTL = SimpleNamespace(get_trials=lambda: [])


def _trial(i: int, **config) -> Trial:
    return Trial("__fake", trial_id=f"t{i}", stub=True, config=config)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_seed_per_configuration_decides_as_tunes_asha(seed: int) -> None:
    """Random interleavings of 12 trials' results: every action equals Tune's ASHA's."""
    rng = np.random.default_rng(seed)
    opts = {"time_attr": "sched/epoch", "max_t": 27, "grace_period": 3, "reduction_factor": 3}
    tune_asha = ASHAScheduler(metric="acc", mode="max", **opts)
    ours = SeedGroupASHA(metric="acc", mode="max", **opts)
    trials = [_trial(i, lr=float(i), seed=0) for i in range(12)]
    for t in trials:
        tune_asha.on_trial_add(CTL, t)
        ours.on_trial_add(CTL, t)
    quality = rng.uniform(0, 1, size=12)
    epoch = dict.fromkeys(range(12), 0)
    alive = set(range(12))
    actions = []
    while alive:
        i = int(rng.choice(sorted(alive)))
        epoch[i] += 1
        result = {"sched/epoch": epoch[i], "acc": quality[i] * epoch[i] + rng.normal(0, 0.5)}
        a, b = tune_asha.on_trial_result(CTL, trials[i], result), ours.on_trial_result(CTL, trials[i], result)
        assert a == b, (i, epoch[i])
        actions.append(a)
        if a == TrialScheduler.STOP:
            alive.discard(i)
            tune_asha.on_trial_complete(CTL, trials[i], result)
            ours.on_trial_complete(CTL, trials[i], result)
    assert actions.count(TrialScheduler.STOP) == 12 and min(epoch.values()) < 27  # some were cut


def test_a_configurations_seeds_are_ranked_by_their_mean_and_stopped_together() -> None:
    s = SeedGroupASHA(metric="acc", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    # three configurations × two seeds; at rung 1 the seed values are (a: 9, 1), (b: 4, 4), (c: 3, 3)
    trials = {(c, k): _trial(10 * i + k, lr=c, seed=k) for i, c in enumerate("abc") for k in (0, 1)}
    for t in trials.values():
        s.on_trial_add(CTL, t)
    assert group_key(trials["a", 0].config) == group_key(trials["a", 1].config)

    def report(c: str, k: int, acc: float, epoch: int = 1) -> str:
        return s.on_trial_result(CTL, trials[c, k], {"sched/epoch": epoch, "acc": acc})

    assert report("a", 0, 9.0) == TrialScheduler.CONTINUE  # the first at the rung
    assert report("b", 0, 4.0) == TrialScheduler.STOP  # below the 2/3-quantile of {a: 9}
    assert s.stopped == {group_key(trials["b", 0].config)}
    assert report("b", 1, 4.0) == TrialScheduler.STOP  # b's other seed ends with it
    # a's second seed at 1 — Tune's ASHA would stop that trial (1 < the quantile of 9, 4, 4) —
    # brings a's mean to 5, above b's 4: a goes on, both seeds
    assert report("a", 1, 1.0) == TrialScheduler.CONTINUE
    assert s.rungs[-1][1][group_key(trials["a", 0].config)] == {"t0": 9.0, "t1": 1.0}
    # c at 3 against a 5 and b 4: quantile 4.67 → stopped; its second seed too
    assert report("c", 0, 3.0) == TrialScheduler.STOP
    assert report("c", 1, 30.0, epoch=2) == TrialScheduler.STOP
    assert report("a", 0, 9.5, epoch=9) == TrialScheduler.STOP  # max_t


def test_the_runner_ranks_configurations_when_a_spec_has_several_seeds() -> None:
    raw = {"name": "t", "method": "scl", "search_space": {"lambda_": [0.1, 0.5]}, "config": {"epochs": 20}}
    one = job_scheduler(parse_spec({**raw, "scheduler": "asha"}))
    several = job_scheduler(parse_spec({**raw, "scheduler": "asha", "seeds": [0, 1, 2]}))
    assert isinstance(one, ASHAScheduler)
    assert isinstance(several, SeedGroupASHA) and several.max_t == 20
    assert [m for m, _ in several.rungs] == [15, 5]  # grace a quarter of 20, × 3 below max_t
    one_bracket = job_scheduler(
        parse_spec({**raw, "scheduler": "asha", "seeds": [0, 1], "asha": {"brackets": 1}})
    )
    assert isinstance(one_bracket, SeedGroupASHA)
    with pytest.raises(ConfigError) as e:
        parse_spec({**raw, "scheduler": "asha", "seeds": [0, 1], "asha": {"brackets": 2}})
    assert e.value.field == "asha.brackets" and "must be 1 with several seeds" in str(e.value)
