"""bench/search_efficiency.py's replay of searchers on recorded curves: the fraction of the grid's
epochs to the target is counted exactly, stage-1 epochs (``sched/epoch`` 0) never count, ASHA
stops the worse trials, and the seeded default is the first trial."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "search_efficiency", Path(__file__).resolve().parents[1] / "bench" / "search_efficiency.py"
)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

AXES = {"alpha": [0.1, 0.5], "temperature": [0.1, 0.3]}
EPOCHS = 4


def _curves(stage1: int = 0) -> dict[str, list[dict]]:
    """Final val 10, 20, 30, 40 by point; stage-1 epochs report a misleading 99."""
    out = {}
    for rank, p in enumerate(bench.grid_points(AXES)):
        curve = []
        for e in range(1, EPOCHS + 1):
            s = max(0, e - stage1)
            curve.append({"sched": s, "val": 99.0 if s == 0 else 10.0 * (rank + 1) * s / (EPOCHS - stage1),
                          "test": None if s == 0 else float(rank)})  # fmt: skip
        out[bench.point_key(p)] = curve
    return out


def test_random_with_the_default_first_counts_epochs_to_the_target() -> None:
    best = bench.grid_points(AXES)[-1]
    r = bench.simulate(_curves(), AXES, "coin", EPOCHS, "random", 0, best)
    # the best point first: within 1 point of 40 only at its last epoch
    assert r["frac_to_target"] == pytest.approx(EPOCHS / (4 * EPOCHS))
    assert r["frac_total"] == 1.0 and r["pick_val"] == 40.0 and r["pick_test"] == 3.0


def test_stage1_reports_never_count_and_asha_cuts() -> None:
    curves = _curves(stage1=2)
    r = bench.simulate(curves, AXES, "coin", EPOCHS, "random", 1, None)
    assert r["pick_val"] == 40.0  # not the stage-1 99
    a = bench.simulate(curves, AXES, "coin", EPOCHS, "asha", 1, bench.grid_points(AXES)[-1])
    # the best first runs to the end; at the first stage-2 rung (epoch 3) the order (40, 10, 20,
    # 30 by final val) cuts 10 and 20 and keeps 30 (in ASHA's top third), none in stage 1
    assert a["epochs"] == EPOCHS + 3 + 3 + EPOCHS and a["pick_val"] == 40.0
    t = bench.simulate(curves, AXES, "coin", EPOCHS, "tpe+asha", 0, bench.grid_points(AXES)[0])
    assert t["trials"] == 4 and t["frac_total"] <= 1.0


def test_several_training_seeds_run_in_step_and_select_on_the_seeds_mean() -> None:
    seed0 = _curves()  # final val 10, 20, 30, 40 by point
    seed1 = {}
    for rank, p in enumerate(bench.grid_points(AXES)):  # final val 10, 20, 60, 20
        final = (10.0, 20.0, 60.0, 20.0)[rank]
        seed1[bench.point_key(p)] = [
            {"sched": e, "val": final * e / EPOCHS, "test": float(rank) + 1} for e in range(1, EPOCHS + 1)
        ]
    third = bench.grid_points(AXES)[2]  # the best on the mean (45 against 10, 20, 30)
    r = bench.simulate([seed0, seed1], AXES, "coin", EPOCHS, "random", 0, third)
    # both seeds of the best run first, in step: the mean 45·e/4 reaches 44 at epoch 4, after 2 × 4
    assert r["frac_to_target"] == pytest.approx(2 * EPOCHS / (4 * EPOCHS * 2))
    assert r["trials"] == 4 * 2 and r["frac_total"] == 1.0
    assert r["pick_val"] == pytest.approx(45.0) and r["pick_test"] == pytest.approx(2.5)  # means
    finals = bench.mean_finals([seed0, seed1])
    assert finals[bench.point_key(third)] == {"val": 45.0, "test": 2.5}
    # one seed alone: the simulation of before (point 4 is its best)
    assert bench.simulate([seed0], AXES, "coin", EPOCHS, "random", 0, third) == bench.simulate(
        seed0, AXES, "coin", EPOCHS, "random", 0, third
    )


def test_tune_replays_asha_with_the_epochs_simulate_counts_and_hyperband_pays_each_once(
    ray_session, tmp_path
) -> None:
    axes = {"alpha": [0.1, 0.3, 0.5], "temperature": [0.1, 0.3, 0.5]}
    curves = {}
    for rank, p in enumerate(bench.grid_points(axes)):  # ranks interleaved: the order matters
        q = (rank * 4) % 9
        curves[bench.point_key(p)] = [
            {"sched": e, "val": 10.0 * q + e, "test": float(q)} for e in range(1, 10)
        ]
    sim = bench.simulate(curves, axes, "coin", 9, "asha", 3, None)
    real = bench.tune_replay(curves, axes, "coin", 9, "asha", 3, None, tmp_path / "a")
    assert real["epochs"] == sim["epochs"] < 81 and real["frac_to_target"] == sim["frac_to_target"]
    assert real["pick_val"] == sim["pick_val"] == 89.0
    hb = bench.tune_replay(curves, axes, "coin", 9, "hyperband", 3, None, tmp_path / "h")
    # HyperBand pauses and resumes trials (the replay raises if an epoch is paid twice) and
    # stops some: fewer epochs than the grid, and it still ends on the best configuration
    assert hb["trials"] == 9 and hb["epochs"] < 81 and hb["pick_val"] == 89.0


def test_configurations_running_at_once_advance_in_lockstep() -> None:
    best = bench.grid_points(AXES)[-1]  # final val 40, first (the seeded default)
    # two at once: the best and the next run epochs in turns; the best's 4th epoch (val 40, the
    # target is 39) is the 7th epoch paid, not the 4th as one at a time
    two = bench.simulate(_curves(), AXES, "coin", EPOCHS, "random", 0, best, concurrency=2)
    assert two["frac_to_target"] == pytest.approx(7 / (4 * EPOCHS)) and two["frac_total"] == 1.0
    # all four at once: the target falls at the best's last epoch, the first of the last round
    four = bench.simulate(_curves(), AXES, "coin", EPOCHS, "random", 0, best, concurrency=4)
    assert four["frac_to_target"] == pytest.approx((3 * 4 + 1) / (4 * EPOCHS))
    assert four["pick_val"] == 40.0 and four["trials"] == 4
    # concurrency 1 is the sequential replay
    assert bench.simulate(
        _curves(), AXES, "coin", EPOCHS, "random", 0, best, concurrency=1
    ) == bench.simulate(_curves(), AXES, "coin", EPOCHS, "random", 0, best)


def test_asha_with_configurations_at_once_compares_them_at_the_same_rung() -> None:
    points = bench.grid_points(AXES)
    best = points[-1]
    curves = {bench.point_key(p): [{"sched": e, "val": 5.0 + e, "test": 0.0} for e in range(1, EPOCHS + 1)]
              for p in points[:-1]}  # fmt: skip
    curves[bench.point_key(best)] = [{"sched": e, "val": 10.0 * e, "test": 1.0} for e in range(1, EPOCHS + 1)]
    # one at a time: the best (first) runs its 4 epochs, each other stops at rung 1 (6 < 10)
    one = bench.simulate(curves, AXES, "coin", EPOCHS, "asha", 0, best)
    assert one["epochs"] == 4 + 3 and one["frac_to_target"] == pytest.approx(4 / 16)
    # all at once: the four first epochs are paid in round 1 (the best's 10 is recorded first, so
    # every 6 after it is below ASHA's cutoff), then the best alone: its 4th epoch is the 7th paid
    four = bench.simulate(curves, AXES, "coin", EPOCHS, "asha", 0, best, concurrency=4)
    assert four["epochs"] == 7 and four["frac_to_target"] == pytest.approx(7 / 16)
    assert four["pick_val"] == 40.0 and four["pick_test"] == 1.0


def test_concurrent_runs_are_keyed_apart() -> None:
    assert bench.at_concurrency("gp+asha-g5+default|seed=2", 1) == "gp+asha-g5+default|seed=2"
    assert bench.at_concurrency("gp+asha-g5+default|seed=2", 4) == "gp+asha-g5+default|c=4|seed=2"


def test_one_seed_runs_on_several_seeds_grids_pool_against_each_grids_own_best() -> None:
    points = bench.grid_points(AXES)
    seed0 = _curves()  # final val 10, 20, 30, 40: point 4 is the best
    seed1 = {  # final val 10, 20, 60, 20: point 3 is the best
        bench.point_key(p): [
            {"sched": e, "val": final * e / EPOCHS, "test": 1.0} for e in range(1, EPOCHS + 1)
        ]
        for p, final in zip(points, (10.0, 20.0, 60.0, 20.0), strict=True)
    }
    grids = {}
    for t, curves in ((0, seed0), (1, seed1)):
        runs = {
            f"random|seed={s}": bench.simulate(curves, AXES, "coin", EPOCHS, "random", s, None)
            for s in (0, 1)
        }
        # seeded with point 3: on seed 1's grid the best comes first and reaches 59 at its 4th epoch
        runs["random+default|seed=0"] = bench.simulate(curves, AXES, "coin", EPOCHS, "random", 0, points[2])
        runs["hyperband|seed=0"] = {**runs["random|seed=0"], "frac_to_target": 0.01}  # Tune's: left out
        grids[t] = (curves, runs)
    out = bench.summarize_single("coin_alpha_tau", grids, AXES)
    assert set(out["searchers"]) == {"random", "random+default"}
    pooled = [grids[t][1][f"random|seed={s}"]["frac_to_target"] for t in (0, 1) for s in (0, 1)]
    assert out["searchers"]["random"]["seeds"] == 4 and out["searchers"]["random"]["reached"] == 4
    assert out["searchers"]["random"]["frac_to_target"] == pytest.approx(sum(pooled) / 4)
    assert grids[1][1]["random+default|seed=0"]["frac_to_target"] == pytest.approx(EPOCHS / (4 * EPOCHS))
    assert out["grid_best_val"] == pytest.approx((40.0 + 60.0) / 2)  # each grid's own best
    assert out["grid_best_config"] == [points[3], points[2]] and out["train_seeds"] == [0, 1]
    assert out["per_train_seed"]["1"]["searchers"]["random"]["seeds"] == 2
    assert out["per_train_seed"]["1"]["grid_best_val"] == 60.0
