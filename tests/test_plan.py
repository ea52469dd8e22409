"""ftsweep.plan: trials, epochs and images of a sweep counted exactly (against hand computations
from the split rule and the methods' views), the estimate's arithmetic from a given throughput
table, the throughput file format and the text table. No timing is asserted."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ftsweep.config import ConfigError
from ftsweep.config.spec import load_spec, parse_spec
from ftsweep.data import load_dataset
from ftsweep.plan import (
    Throughput,
    ThroughputTable,
    format_plan,
    load_throughput,
    parallel_slots,
    plan_spec,
    throughput_entry,
    write_throughput,
)


def _digits_sizes(val_fraction: float) -> tuple[int, int, int]:
    """(train part, validation split, test part) of digits by the stratified rule, by hand."""
    d = load_dataset("digits")
    counts = np.bincount(np.asarray(d.train_targets))
    val = sum(max(1, min(round(val_fraction * n), n - 1)) for n in counts)
    return int(counts.sum()), int(val), len(d.test_targets)


TINY = {
    "name": "tiny",
    "methods": [
        {"method": "ce", "search_space": {"lr": [0.1, 0.01]}},
        {"method": "schane", "search_space": {"lambda_": [0.1, 0.5, 0.9]}},
        {"method": "coin", "search_space": {"epochs": [4, 6]}},
    ],
    "dataset": "digits",
    "pretrained": "none",
    "config": {"epochs": 5, "batch_size": 16, "labels_per_class": 3, "val_fraction": 0.3},
    "seeds": [0, 1],
}


def test_tiny_digits_counts_by_hand() -> None:
    plan = plan_spec(parse_spec(TINY), cpus=2)
    _, val, test = _digits_sizes(0.3)
    labeled = 3 * 10
    rows = {j.name: j for j in plan.jobs}
    ce, schane, coin = rows["ce-digits"], rows["schane-digits"], rows["coin-digits"]
    assert (ce.trials, ce.epochs) == (4, 20)
    assert ce.train_images == 4 * 5 * labeled  # one view
    assert ce.eval_images == 4 * (5 * val + test)  # val every epoch, test at the selected epoch
    assert (schane.trials, schane.epochs) == (6, 30)
    assert schane.train_images == 6 * 5 * labeled * 2  # two AutoAugment views
    # ... and the last epoch's test features (isotropy, few-shot episodes)
    assert schane.eval_images == 6 * (5 * val + test + test)
    assert (coin.trials, coin.epochs) == (4, 2 * (4 + 6))  # epochs as a search axis, per trial
    assert coin.train_images == 2 * (4 + 6) * labeled
    # α = 0.7: stage 1 of 2 and 4 epochs; S_Dbw passes over validation at its end and the last epoch
    assert coin.eval_images == 2 * ((4 + 6) * val + 2 * test + 2 * 2 * val)
    assert plan.trials == 14 and plan.epochs == 20 + 30 + 20
    assert plan.train_images == ce.train_images + schane.train_images + coin.train_images
    # checkpoint_frequency 1 (the default): one checkpoint per epoch, the end's among them
    assert (ce.checkpoints, coin.checkpoints, plan.checkpoints) == (20, 20, 70)


@pytest.mark.parametrize(
    ("frequency", "ce", "coin"), [(2, 4 * 3, 2 * (2 + 3)), (4, 4 * 2, 2 * (1 + 2)), (0, 4, 4)]
)
def test_checkpoints_every_frequency_epochs_and_at_the_end(frequency: int, ce: int, coin: int) -> None:
    # ce: 5 epochs; coin: 4 and 6 — every `frequency` epochs, plus the end's when it falls between
    # (5 epochs every 2: after 2, 4 and the end; every 4: after 4 and the end); 0: the end's only
    rows = {j.name: j for j in plan_spec(parse_spec({**TINY, "checkpoint_frequency": frequency})).jobs}
    assert (rows["ce-digits"].checkpoints, rows["coin-digits"].checkpoints) == (ce, coin)


def test_caps_views_and_shared_stage1_of_the_digits_semi_spec() -> None:
    spec = load_spec("sweeps/target_pretraining_digits.yaml")
    rows = {j.name: j for j in plan_spec(spec).jobs}
    train, val, test = _digits_sizes(0.1)
    steps, b, mu = 25, 16, 7
    sup, fm = rows["supervised-digits"], rows["fixmatch-digits"]
    # 2 stage1 values × 3 seeds; 10 step-based epochs of 25 batches of exactly B
    assert (sup.trials, sup.epochs, sup.train_images) == (6, 60, 6 * 10 * steps * b)
    # FixMatch: B labeled + μB weak + μB strong per step
    assert fm.train_images == 6 * 10 * steps * (b + 2 * mu * b)
    # validation: 4 labeled images per class; test at the 3 counted epochs (median_last_k)
    assert fm.eval_images == 6 * (10 * 4 * 10 + 3 * test)
    # one BYOL stage 1 shared by both methods and every seed: counted once
    stage1 = [j for j in rows.values() if j.stage1]
    assert len(stage1) == 1 and stage1[0].trials == 1
    pool = train - val
    assert stage1[0].epochs == 30 and stage1[0].train_images == 30 * (pool // 128) * 128 * 2
    assert "fixmatch-digits:stage1" not in rows


def test_shipped_paper_spec_coin_table4() -> None:
    spec = load_spec("sweeps/coin_table4.yaml")
    (job,) = plan_spec(spec, gpus=8).jobs
    alphas = len(spec.jobs()[0].space["alpha"]["grid_search"])
    # CIFAR-10: 5000 train images per class, val_fraction 0.1 → 500 per class for validation
    assert job.trials == alphas * 3 and job.epochs == alphas * 3 * 100
    assert job.train_images == job.trials * 100 * 45_000
    # S_Dbw over validation at the last epoch, and at the end of a stage 1 (⌊α·100⌋ > 0)
    s_dbw = sum(1 + (math.floor(round(a * 100, 9)) > 0) for a in spec.jobs()[0].space["alpha"]["grid_search"])
    assert job.eval_images == job.trials * (100 * 5_000 + 10_000) + 3 * s_dbw * 5_000
    assert job.seconds is None and job.device == "gpu"


def test_estimate_arithmetic_from_a_throughput_table(tmp_path) -> None:
    spec = load_spec("sweeps/coin_table4.yaml")
    path = tmp_path / "tp.json"
    size = plan_spec(spec, gpus=4).jobs[0].image_size  # the spec's image_size, else the dataset's
    write_throughput(
        path,
        [throughput_entry("coin", "torchvision.resnet50", size, "NVIDIA H200", 2000.0, 8000.0, 30.0, 1.5)],
    )
    table = load_throughput(path)
    plan = plan_spec(spec, throughput=table, gpus=4, cpus=64)
    (job,) = plan.jobs
    # every trial pays its 30-s set-up once, and 1.5 s for each of its 100 epochs' checkpoints
    assert job.checkpoints == job.trials * 100
    seconds = job.trials * (30.0 + 100 * 1.5) + job.train_images / 2000.0 + job.eval_images / 8000.0
    assert job.device == "NVIDIA H200" and job.seconds == pytest.approx(seconds)
    assert job.gpu_hours == pytest.approx(seconds * 1.0 / 3600)
    # 4 GPUs, 1 per trial, 64 CPUs / 8 per trial = 8: 4 at once
    assert plan.slots == 4 and plan.wall_seconds == pytest.approx(seconds / 4)
    assert plan.gpu_hours == pytest.approx(job.gpu_hours)
    # CPUs bind: 16 CPUs / 8 per trial = 2 at once
    assert parallel_slots(spec, gpus=4, cpus=16) == 2
    text = format_plan(plan)
    assert "coin-cifar10" in text and "total" in text and "4 trial(s) at once" in text


def test_cpu_trials_and_wildcard_method() -> None:
    spec = parse_spec({**TINY, "resources": {"cpu": 1, "gpu": 0}})
    table = ThroughputTable({("*", "small_cnn", 32, "cpu"): Throughput(100.0, 400.0)})
    plan = plan_spec(spec, throughput=table, cpus=2)
    assert plan.slots == 2 and all(j.gpu_hours == 0 for j in plan.jobs)
    total = sum(j.train_images / 100.0 + j.eval_images / 400.0 for j in plan.jobs)
    assert plan.seconds == pytest.approx(total) and plan.wall_seconds == pytest.approx(total / 2)


def test_optuna_trials_cost_the_mean_grid_config() -> None:
    # fewer suggestions than cells: each costs the mean grid config (the one method's search
    # owns epochs: a fixed value beside it would be refused)
    coin = {**TINY, "methods": [TINY["methods"][2]], "config": {**TINY["config"]}, "searcher": "optuna"}
    del coin["config"]["epochs"]
    spec = parse_spec({**coin, "num_samples": 1})
    (job,) = plan_spec(spec).jobs
    assert job.trials == 2 and job.epochs == 2 * (4 + 6) / 2
    assert not math.isnan(job.train_images)
    # more than the grid's cells: no cell runs twice, so every cell once per seed, counted exactly
    spec = parse_spec({**coin, "num_samples": 5})
    (job,) = plan_spec(spec).jobs
    assert job.trials == 2 * 2 and job.epochs == 2 * (4 + 6)


def test_bad_throughput_files(tmp_path) -> None:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"entries": [{"method": "ce"}]}))
    with pytest.raises(ConfigError, match="must have keys"):
        load_throughput(p)
    entry = throughput_entry("ce", "small_cnn", 32, "cpu", 100.0, 400.0, 0.0, -0.5)
    p.write_text(json.dumps({"entries": [entry]}))
    with pytest.raises(ConfigError, match="checkpoint_s >= 0"):
        load_throughput(p)
    with pytest.raises(ConfigError, match="existing"):
        load_throughput(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="GPU count"):
        parallel_slots(load_spec("sweeps/coin_table4.yaml"))


def test_calibrate_measures_every_method_backbone_and_size() -> None:
    from ftsweep.plan import calibrate

    spec = parse_spec({**TINY, "methods": TINY["methods"][:2]})
    table = calibrate(spec, steps=1, eval_batches=1)
    assert set(table.entries) == {("ce", "small_cnn", 32, "cpu"), ("schane", "small_cnn", 32, "cpu")}
    assert all(
        tp.train > 0 and tp.eval > 0 and tp.setup > 0 and tp.checkpoint > 0 for tp in table.entries.values()
    )
    assert plan_spec(spec, throughput=table).seconds is not None


def test_validate_ends_with_the_plan_estimated_from_a_throughput_file(tmp_path, capsys) -> None:
    from ftsweep.cli import main

    path = tmp_path / "tp.json"
    write_throughput(path, [throughput_entry("*", "small_cnn", 32, "cpu", 1000.0, 4000.0, 1.0)])
    assert main(["validate", "sweeps/demo.yaml", "--throughput", str(path), "--cpus", "4"]) == 0
    out = capsys.readouterr().out
    plan = plan_spec(load_spec("sweeps/demo.yaml"), throughput=load_throughput(path), cpus=4)
    ce = next(j for j in plan.jobs if j.name == "ce-digits")
    assert ce.seconds == pytest.approx(2 * 1.0 + ce.train_images / 1000.0 + ce.eval_images / 4000.0)
    assert "OK — 5 jobs" in out and format_plan(plan) in out and "4 trial(s) at once" in out
    assert main(["validate", "sweeps/demo.yaml", "--throughput", str(tmp_path / "none.json")]) == 2


OPTUNA_GRID = {
    "name": "o",
    "method": "core_tuning",
    "dataset": "digits",
    "pretrained": "none",
    "searcher": "optuna",
    "search_space": {"eta": [0.1, 1.0, 10.0], "mixup_alpha": [0.1, 1.0, 10.0]},
    "num_samples": 9,
    "config": {"epochs": 20},
}


def _notes(raw: dict, cpus: int) -> tuple[str, ...]:
    return plan_spec(parse_spec(raw), cpus=cpus).notes


def test_notes_say_when_optuna_can_use_no_result() -> None:
    # TPE's own 10 random start-up trials cover the grid's 9 cells, one trial at a time
    (note,) = _notes(OPTUNA_GRID, cpus=1)
    assert "(tpe) draws its first 10 configurations at random and suggests 9" in note
    assert "optuna.n_startup_trials below 9" in note and note.startswith("core_tuning-digits: ")
    assert _notes({**OPTUNA_GRID, "optuna": {"n_startup_trials": 8}}, cpus=1) == ()
    # 5 suggestions of the 9 cells: 10 start-up trials still cover them
    (note,) = _notes({**OPTUNA_GRID, "num_samples": 5}, cpus=1)
    assert "suggests 5" in note
    # GP starts from axes + 1 = 3; 8 slots start 8 of its 9 configurations before any result, 9 all
    gp = {**OPTUNA_GRID, "optuna": {"sampler": "gp"}}
    assert _notes(gp, cpus=8) == ()
    (note,) = _notes(gp, cpus=9)
    assert "(gp) suggests 9 configurations and 9 trial slots start them all" in note
    assert "max_concurrent_trials below 9" in note
    assert _notes({**gp, "max_concurrent_trials": 8}, cpus=64) == ()
    # two seeds: a configuration's two trials start together, so 17 slots hold 8 configurations
    assert _notes({**gp, "seeds": [0, 1]}, cpus=17) == ()
    (note,) = _notes({**gp, "seeds": [0, 1]}, cpus=18)
    assert "max_concurrent_trials below 18" in note
    # a grid search has no model to starve
    assert _notes({**OPTUNA_GRID, "searcher": "grid", "num_samples": 1}, cpus=64) == ()


def test_notes_say_when_asha_stops_no_trial() -> None:
    asha = {**OPTUNA_GRID, "searcher": "grid", "num_samples": 1, "scheduler": "asha"}
    assert _notes(asha, cpus=1) == ()  # the runner's grace period: 20 epochs // 4
    (note,) = _notes({**asha, "asha": {"grace_period": 20}}, cpus=1)
    assert note.startswith("asha.grace_period 20 >= max_t 20")
    (note,) = _notes({**asha, "asha": {"grace_period": 6, "max_t": 5}}, cpus=1)
    assert note.startswith("asha.grace_period 6 >= max_t 5")
    assert _notes({**asha, "asha": {"grace_period": 19}}, cpus=1) == ()


def test_notes_name_the_configurations_that_end_before_ashas_first_rung() -> None:
    coin = {
        "name": "c",
        "method": "coin",
        "dataset": "digits",
        "pretrained": "none",
        "search_space": {"alpha": [0.1, 0.7, 0.75, 0.9]},
        "config": {"epochs": 20},
        "scheduler": "asha",
    }
    # stage 2 of 20 epochs: 20 - floor(20 α) = 18, 6, 5, 2; the grace period 20 // 4 = 5
    (note,) = _notes(coin, cpus=1)
    assert note.startswith("coin-digits: 2 of 4 configurations end at or below asha.grace_period 5")
    assert "(alpha=0.75 at 5, alpha=0.9 at 2)" in note
    assert "ASHA never stops those early; asha.grace_period 1 would compare them" in note
    assert _notes({**coin, "asha": {"grace_period": 1}}, cpus=1) == ()
    # two seeds: still one entry per configuration
    (note,) = _notes({**coin, "seeds": [0, 1]}, cpus=1)
    assert note.startswith("coin-digits: 2 of 4 configurations")
    # a warm-up is not counted: 20 - 16 = 4 <= 5, 20 - 14 = 6 > 5
    ce = {**coin, "method": "ce", "search_space": None}
    (note,) = _notes({**ce, "config": {"epochs": 20, "warmup_epochs": 16}}, cpus=1)
    assert note.startswith("ce-digits: 1 of 1 configurations") and "(ce-digits at 4)" in note
    assert "ASHA stops none of its trials early; asha.grace_period 3 would compare them" in note
    assert _notes({**ce, "config": {"epochs": 20, "warmup_epochs": 14}}, cpus=1) == ()
    # select: last counts one epoch, the last: no grace period can compare it
    (note,) = _notes({**ce, "config": {"epochs": 20, "select": "last"}}, cpus=1)
    assert "(ce-digits at 1)" in note and note.endswith("early; use scheduler: fifo")
    # fifo: no note
    assert _notes({**coin, "scheduler": "fifo"}, cpus=1) == ()


def test_validate_and_plan_print_the_notes_and_still_pass(tmp_path, capsys) -> None:
    import yaml

    from ftsweep.cli import main

    path = tmp_path / "o.yaml"
    path.write_text(yaml.safe_dump(OPTUNA_GRID))
    for command in ("validate", "plan"):
        assert main([command, str(path), "--cpus", "1"]) == 0
        out = capsys.readouterr().out
        assert "\nnote: core_tuning-digits: optuna (tpe) draws its first 10" in out


def test_run_prints_the_notes_before_ray_starts(tmp_path, monkeypatch, capsys) -> None:
    import yaml

    from ftsweep.cli import main

    path = tmp_path / "o.yaml"
    path.write_text(yaml.safe_dump({**OPTUNA_GRID, "scheduler": "asha", "asha": {"grace_period": 20}}))
    monkeypatch.chdir(tmp_path)
    # --resume with no version to resume: refused before Ray starts, after the notes
    assert main(["run", str(path), "--resume"]) == 2
    out = capsys.readouterr().out
    assert "ftsweep: note: core_tuning-digits: optuna (tpe) draws its first 10" in out
    assert "ftsweep: note: asha.grace_period 20 >= max_t 20" in out
    assert not (tmp_path / "results").exists()


def test_two_jobs_training_one_configuration_are_noted() -> None:
    # Core-tuning's Table 6 one at a time: both rows' searches held the other threshold at 0.8,
    # so (0.8, 0.8) was trained by both jobs, each seed twice
    spec = {
        "name": "t6",
        "methods": [
            {"method": "core_tuning", "name": "ct_n", "search_space": {"lambda_n": [0.4, 0.8]}},
            {"method": "core_tuning", "name": "ct_p", "search_space": {"lambda_p": [0.4, 0.8]}},
            # another dataset-free difference: a data folder is not the configuration
            {"method": "core_tuning", "name": "ct_q", "config": {"data_root": "/elsewhere"}},
            {"method": "core_tuning", "name": "ct_e", "config": {"eta": 0.5}},  # another η
        ],
        "dataset": "digits",
        "pretrained": "none",
        "config": {"epochs": 2, "labels_per_class": 3},
        "seeds": [0, 1, 2],
    }
    notes = [n for n in plan_spec(parse_spec(spec), cpus=2).notes if "trained twice" in n]
    assert notes == [
        "ct_p-digits trains lambda_p=0.8, which ct_n-digits trains as well: each of its 3 seed(s) "
        "is trained twice; leave it out of one of the two searches",
        "ct_q-digits trains its configuration, which ct_n-digits trains as well: each of its 3 "
        "seed(s) is trained twice; leave it out of one of the two searches",
    ]
    spec["methods"] = spec["methods"][:2]
    spec["methods"][1]["search_space"] = {"lambda_p": [0.4, 0.6]}
    assert not [n for n in plan_spec(parse_spec(spec), cpus=2).notes if "trained twice" in n]


def test_a_stage1_batch_above_the_pool_is_one_batch_of_the_pool() -> None:
    # ftsweep.pretrain.pool shrinks the batch to the pool: one step of every image, two views
    # (the plan counted pool // 2048 = 0 steps)
    from ftsweep.plan import _trial_counts
    from ftsweep.trial import method_class

    cls = method_class("target_pretrain")
    train, val, _ = _digits_sizes(0.1)
    cfg = cls.config_cls.from_dict(
        {"dataset": "digits", "epochs": 2, "batch_size": 2048, "objective": "moco_v2"}
    )
    assert _trial_counts(cls, cfg) == (2, 2 * (train - val) * 2, 0)
