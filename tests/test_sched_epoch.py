"""``sched/epoch``: the epochs in which the selection metric can move (FineTuner.schedulable_epochs),
the time of the runner's ASHA. COIN's stage 1 counts 0, so ASHA (driven directly with fake trials,
as Ray's own scheduler tests do) keeps every trial through stage 1 and cuts at the rungs of
stage 2, for every α."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from ftsweep.config.spec import parse_spec
from ftsweep.methods.base import FineTuner
from ftsweep.methods.coin import CoinMethod, stage1_epochs
from ftsweep.runner import job_scheduler

EPOCHS = 12


def _spec(method: str, alphas: list[float]) -> object:
    return parse_spec(
        {
            "name": "t",
            "method": method,
            "search_space": {"alpha": alphas} if method == "coin" else None,
            "dataset": "digits",
            "pretrained": "none",
            "config": {"epochs": EPOCHS},
            "scheduler": "asha",
        }
    )


def _cfg(alpha: float = 0.0, warmup: int = 0, select: str = "best_val", k: int = 1) -> SimpleNamespace:
    """The config fields sched/epoch reads (no data or model)."""
    return SimpleNamespace(epochs=EPOCHS, alpha=alpha, warmup_epochs=warmup, select=select, select_k=k)


def _coin_at(alpha: float, epoch: int, warmup: int = 0) -> int:
    return CoinMethod.schedulable_at(_cfg(alpha, warmup), epoch)


def test_schedulable_epochs_per_method() -> None:
    assert FineTuner.schedulable_at(_cfg(warmup=2), 5) == 3  # warm-up epochs not counted
    # only the counted (final) epochs define best/val/acc: the last 3 of 12, the last 1
    median = _cfg(select="median_last_k", k=3)
    assert [FineTuner.schedulable_at(median, e) for e in range(8, 13)] == [0, 0, 1, 2, 3]
    assert [FineTuner.schedulable_at(_cfg(select="last"), e) for e in (11, 12)] == [0, 1]
    # COIN α = 0.5 of 12 epochs: stage 1 is epochs 1..6
    assert [_coin_at(0.5, e) for e in range(1, 9)] == [0] * 6 + [1, 2]
    assert _coin_at(0.5, 8, warmup=7) == 1  # warm-up outlasting stage 1
    assert _coin_at(0.0, 3) == 3
    assert CoinMethod.schedulable_at(median, 12) == 3  # the counted epochs, as any method


def _run(method_cls: type, **config: object) -> list[float]:
    m = method_cls(
        {
            "pretrained": "none",
            "device": "cpu",
            "batch_size": 16,
            "max_train_batches": 1,
            "max_eval_batches": 1,
            **config,
        }
    )
    return [m.step()["sched/epoch"] for _ in range(m.cfg.epochs)]


def test_steps_report_the_sched_epoch_of_their_config() -> None:
    assert _run(CoinMethod, epochs=3, alpha=0.34) == [0.0, 1.0, 2.0]
    # a real run's counted epochs (select_k of them) are what schedulable_at says
    assert _run(FineTuner, epochs=4, select="median_last_k", select_k=2) == [0.0, 0.0, 1.0, 2.0]


@pytest.mark.parametrize("alpha", [0.25, 0.75])
def test_asha_on_sched_epoch_keeps_stage1_and_cuts_at_stage2_rungs(alpha: float) -> None:
    spec = _spec("coin", [alpha])
    asha = job_scheduler(spec)
    assert asha._time_attr == "sched/epoch" and asha._max_t == EPOCHS
    asha.set_search_properties("best/val/acc", "max")
    n, s1 = 9, stage1_epochs(alpha, EPOCHS)
    trials = [Trial("__fake", trial_id=f"t{i}", stub=True) for i in range(n)]
    controller = SimpleNamespace(get_trials=lambda: trials)
    for t in trials:
        asha.on_trial_add(controller, t)
    alive = set(range(n))
    stopped_at: dict[int, int] = {}
    for epoch in range(1, EPOCHS + 1):
        for i in sorted(alive, reverse=True):  # the best first: the cutoffs bite at once
            # stage 1: the untrained classifier's accuracy runs against the trials' final order
            acc = (50.0 - i) if epoch <= s1 else 10.0 * i + epoch
            result = {"sched/epoch": float(_coin_at(alpha, epoch)), "best/val/acc": acc}
            if asha.on_trial_result(controller, trials[i], result) == TrialScheduler.STOP:
                alive.discard(i)
                stopped_at[i] = epoch
    # nobody stops in stage 1; the rungs (grace 12 // 4 = 3, then 9 epochs of stage 2) cut the
    # worse trials
    assert all(e > s1 for e in stopped_at.values())
    assert {e - s1 for e in stopped_at.values()} <= {3, 9}
    assert stopped_at and n - 1 in alive  # the best trial of stage 2 survives
    assert 0 in stopped_at and stopped_at[0] == s1 + 3  # the worst is cut at the first stage-2 rung


def test_asha_max_t_is_the_longest_trial() -> None:
    assert job_scheduler(_spec("ce", [0.5]))._max_t == EPOCHS
