"""ftsweep.plan on a given cluster and throughput file: the trials at once capped by the trials
there are, the wall time no shorter than the longest trial, a cluster that cannot hold one trial
refused, throughput files refused where an entry is ambiguous or misspelt, ``--gpus`` of CPU
trials said to be unused, ``--calibrate`` of GPU trials refused on a machine without a GPU.

Every estimate is computed by hand from the table below; no timing is asserted.

The spec: ``ce`` on digits, ``epochs`` searched over [2, 6], two seeds — four trials, two of 2
epochs and two of 6. A trial of ``e`` epochs trains ``e × 30`` images (3 labels × 10 classes, one
view), evaluates ``e × 10`` validation images (one batch of 10 each epoch) and 10 test images
(``best_val``: one counted test) and writes ``e`` checkpoints. With 30 train images/s, 10 eval
images/s, 4 s set-up and 1 s a checkpoint: ``4 + e + (e + 1) + e = 5 + 3e`` s — 11 s and 23 s,
68 s over the four trials.
"""

from __future__ import annotations

import json
import os

import pytest

from ftsweep.config import ConfigError
from ftsweep.config.spec import parse_spec
from ftsweep.plan import (
    Throughput,
    ThroughputTable,
    calibrate,
    format_plan,
    load_throughput,
    parallel_slots,
    plan_spec,
    throughput_entry,
    write_throughput,
)

SPEC = {
    "name": "cl",
    "method": "ce",
    "dataset": "digits",
    "pretrained": "none",
    "search_space": {"epochs": [2, 6]},
    "seeds": [0, 1],
    "config": {"labels_per_class": 3, "batch_size": 16, "eval_batch_size": 10, "max_eval_batches": 1},
    "resources": {"cpu": 1, "gpu": 0},
}
GPU_SPEC = {**SPEC, "resources": {"cpu": 1, "gpu": 0.5}}
H200 = "NVIDIA H200"
TP = Throughput(30.0, 10.0, 4.0, 1.0)
SHORT, LONG, TOTAL = 5 + 3 * 2, 5 + 3 * 6, 2 * (5 + 3 * 2) + 2 * (5 + 3 * 6)  # 11, 23, 68 s


def _cpu_table() -> ThroughputTable:
    return ThroughputTable({("ce", "small_cnn", 32, "cpu"): TP})


def _gpu_table(*kinds: str) -> ThroughputTable:
    return ThroughputTable({("ce", "small_cnn", 32, kind): TP for kind in kinds or (H200,)})


def _entry(**changes) -> dict:
    return {**throughput_entry("ce", "small_cnn", 32, "cpu", 30.0, 10.0, 4.0, 1.0), **changes}


def _write(tmp_path, rows, name: str = "tp.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"entries": rows}))
    return path


# ---- 1 and 6: trials at once capped by the trials, the wall time by the longest trial --------
def test_per_trial_seconds_and_the_totals_by_hand() -> None:
    plan = plan_spec(parse_spec(SPEC), throughput=_cpu_table(), cpus=2)
    (job,) = plan.jobs
    assert (job.trials, job.epochs, job.train_images, job.eval_images, job.checkpoints) == (
        4,
        2 * 2 + 2 * 6,
        2 * 2 * 30 + 2 * 6 * 30,
        2 * (2 * 10 + 10) + 2 * (6 * 10 + 10),
        16,
    )
    assert job.seconds == pytest.approx(TOTAL) and job.longest == pytest.approx(LONG)
    assert plan.seconds == pytest.approx(68.0) and plan.longest == pytest.approx(23.0)


@pytest.mark.parametrize(
    ("cpus", "slots", "wall"),
    [
        (1, 1, TOTAL),  # one at a time: 68 s
        (2, 2, TOTAL / 2),  # 68 / 2 = 34 s > the longest trial's 23 s: the packing binds
        (3, 3, LONG),  # 68 / 3 = 22.7 s < 23 s: no sweep ends before its longest trial
        (4, 4, LONG),
        (100, 4, LONG),  # 100 CPUs hold 100 trials, the sweep has 4
        (1e308, 4, LONG),  # not a 309-digit count
    ],
)
def test_cpu_trials_at_once_and_wall_time(cpus: float, slots: int, wall: float) -> None:
    plan = plan_spec(parse_spec(SPEC), throughput=_cpu_table(), cpus=cpus)
    assert plan.slots == slots and plan.wall_seconds == pytest.approx(wall)


@pytest.mark.parametrize(
    ("gpus", "slots", "wall"),
    [(0.5, 1, TOTAL), (1, 2, TOTAL / 2), (1.5, 3, LONG), (100, 4, LONG)],
)
def test_gpu_trials_at_once_and_wall_time(gpus: float, slots: int, wall: float) -> None:
    plan = plan_spec(parse_spec(GPU_SPEC), throughput=_gpu_table(), gpus=gpus)
    assert plan.slots == slots and plan.wall_seconds == pytest.approx(wall)
    assert plan.gpu_hours == pytest.approx(TOTAL * 0.5 / 3600)
    # the cluster's capacity itself is not capped: 100 GPUs hold 200 half-GPU trials
    assert parallel_slots(parse_spec(GPU_SPEC), gpus=gpus) == int(gpus / 0.5)


def test_max_concurrent_trials_still_caps_the_slots() -> None:
    plan = plan_spec(parse_spec({**SPEC, "max_concurrent_trials": 2}), throughput=_cpu_table(), cpus=64)
    assert plan.slots == 2 and plan.wall_seconds == pytest.approx(TOTAL / 2)


def test_an_optuna_job_running_fewer_trials_than_cells_takes_its_mean_trial_as_longest() -> None:
    # one suggestion per seed of the 2 cells: each costs the mean config (4 epochs), 5 + 3 × 4
    spec = parse_spec({**SPEC, "searcher": "optuna", "num_samples": 1})
    plan = plan_spec(spec, throughput=_cpu_table(), cpus=1)
    (job,) = plan.jobs
    assert job.trials == 2 and job.seconds == pytest.approx(2 * 17.0)
    assert job.longest == pytest.approx(17.0) and plan.wall_seconds == pytest.approx(34.0)
    plan = plan_spec(spec, throughput=_cpu_table(), cpus=8)
    assert plan.slots == 2 and plan.wall_seconds == pytest.approx(17.0)


def test_the_table_heads_the_sum_over_a_jobs_trials_and_the_wall_line_names_the_longest() -> None:
    text = format_plan(plan_spec(parse_spec(SPEC), throughput=_cpu_table(), cpus=100))
    head = text.splitlines()[0]
    assert "trials' time" in head and "trial time" not in head
    (row,) = [line for line in text.splitlines() if line.startswith("ce-digits")]
    assert row.split()[-2] == "1:08"  # 68 s, the four trials together
    assert "wall time ≈ 0:23 with 4 trial(s) at once on 100 CPU(s)" in text
    assert "at least the longest trial, 0:23" in text
    # no throughput: no estimate, no longest trial
    text = format_plan(plan_spec(parse_spec(SPEC), cpus=100))
    assert "wall time ≈ — with 4 trial(s) at once" in text and "longest" not in text


# ---- 2: a cluster that cannot hold one trial --------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "cluster", "field", "need"),
    [
        ({**SPEC, "resources": {"cpu": 4, "gpu": 0}}, {"cpus": 2}, "--cpus", "resources.cpu 4 CPU(s)"),
        ({**SPEC, "resources": {"cpu": 4, "gpu": 0}}, {"cpus": 3.9}, "--cpus", "resources.cpu 4 CPU(s)"),
        (GPU_SPEC, {"gpus": 0.25}, "--gpus", "resources.gpu 0.5 GPU(s)"),
        ({**SPEC, "resources": {"cpu": 4, "gpu": 1}}, {"gpus": 4, "cpus": 2}, "--cpus", "resources.cpu 4"),
    ],
)
def test_a_cluster_that_cannot_hold_one_trial_is_refused(
    raw: dict, cluster: dict, field: str, need: str
) -> None:
    with pytest.raises(ConfigError, match="cannot hold one trial") as e:
        plan_spec(parse_spec(raw), **cluster)
    assert e.value.field == field and need in e.value.allowed


@pytest.mark.parametrize(
    ("raw", "cluster", "slots"),
    [
        ({**SPEC, "resources": {"cpu": 4, "gpu": 0}}, {"cpus": 4}, 1),
        ({**SPEC, "resources": {"cpu": 4, "gpu": 0}}, {"cpus": 8}, 2),
        (GPU_SPEC, {"gpus": 0.5}, 1),
        ({**SPEC, "resources": {"cpu": 4, "gpu": 1}}, {"gpus": 4, "cpus": 4}, 1),
    ],
)
def test_a_cluster_that_holds_one_trial_is_planned(raw: dict, cluster: dict, slots: int) -> None:
    assert plan_spec(parse_spec(raw), **cluster).slots == slots


def test_this_machines_cpus_too_few_for_one_trial_is_a_note_not_an_error(monkeypatch) -> None:
    spec = parse_spec({**SPEC, "resources": {"cpu": 4, "gpu": 0}})
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    plan = plan_spec(spec)
    assert plan.slots == 1
    assert any("this machine's 2 CPU(s)" in n and "give the cluster's --cpus" in n for n in plan.notes)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    plan = plan_spec(spec)
    assert plan.slots == 2 and not any("this machine" in n for n in plan.notes)


def test_plan_exits_2_on_a_cluster_that_cannot_hold_one_trial(tmp_path, monkeypatch, capsys) -> None:
    import yaml

    from ftsweep.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "resources": {"cpu": 4, "gpu": 0}}))
    assert main(["plan", str(spec), "--cpus", "2"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "ftsweep: error: --cpus: 2.0 — cannot hold one trial: each trial needs resources.cpu 4 CPU(s)\n"
    )
    spec.write_text(yaml.safe_dump(GPU_SPEC))
    assert main(["validate", str(spec), "--gpus", "0.25"]) == 2
    assert (
        "--gpus: 0.25 — cannot hold one trial: each trial needs resources.gpu 0.5 GPU(s)"
        in capsys.readouterr().err
    )
    assert main(["plan", str(spec), "--gpus", "0.5"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing written


# ---- 3: throughput files ----------------------------------------------------------------------
def test_a_good_file_reads_with_its_optional_keys(tmp_path) -> None:
    table = load_throughput(_write(tmp_path, [_entry()]))
    assert table.entries == {("ce", "small_cnn", 32, "cpu"): TP}
    plan = plan_spec(parse_spec(SPEC), throughput=table, cpus=2)
    assert plan.seconds == pytest.approx(TOTAL)


def test_two_entries_of_one_key_are_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"repeats .* of entries\[0\]") as e:
        load_throughput(_write(tmp_path, [_entry(), _entry(train_images_per_s=1.0)]))
    assert e.value.field == "--throughput entries[1]"
    # another device, size or the wildcard method is another key
    rows = [_entry(), _entry(device=H200), _entry(image_size=64), _entry(method="*")]
    assert len(load_throughput(_write(tmp_path, rows)).entries) == 4


@pytest.mark.parametrize("key", ["chekpoint_s", "setup"])
def test_an_unknown_key_is_refused_naming_the_keys(tmp_path, key: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown key\\(s\\) {key}") as e:
        load_throughput(_write(tmp_path, [{**_entry(), key: 3}]))
    assert "setup_s, checkpoint_s" in e.value.allowed and "train_images_per_s" in e.value.allowed


@pytest.mark.parametrize("size", [0, -32])
def test_an_image_size_not_above_0_is_refused(tmp_path, size: int) -> None:
    with pytest.raises(ConfigError, match="image_size must be an integer > 0"):
        load_throughput(_write(tmp_path, [_entry(image_size=size)]))
    assert ("ce", "small_cnn", 1, "cpu") in load_throughput(_write(tmp_path, [_entry(image_size=1)])).entries


@pytest.mark.parametrize("device", ["CPU", "Cpu", "cpu"])
def test_device_cpu_reads_in_any_case(tmp_path, device: str) -> None:
    table = load_throughput(_write(tmp_path, [_entry(device=device)]))
    assert table.entries == {("ce", "small_cnn", 32, "cpu"): TP}
    assert plan_spec(parse_spec(SPEC), throughput=table, cpus=2).seconds == pytest.approx(TOTAL)


def test_cpu_in_two_cases_is_one_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match="repeats"):
        load_throughput(_write(tmp_path, [_entry(device="cpu"), _entry(device="CPU")]))


def test_an_unknown_method_or_backbone_is_refused_naming_the_known_ones(tmp_path) -> None:
    with pytest.raises(ConfigError, match="must be a registered method or") as e:
        load_throughput(_write(tmp_path, [_entry(method="sclx")]))
    assert e.value.field == "--throughput entries[0].method" and "scl" in e.value.allowed.split(": ")[
        1
    ].split(", ")
    with pytest.raises(ConfigError, match="must be a known backbone") as e:
        load_throughput(_write(tmp_path, [_entry(backbone="small_cnnx")]))
    assert e.value.field == "--throughput entries[0].backbone" and "small_cnn" in e.value.allowed
    rows = [_entry(method="*"), _entry(method="target_pretrain"), _entry(backbone="torchvision.resnet50")]
    assert len(load_throughput(_write(tmp_path, rows)).entries) == 3


@pytest.mark.parametrize("content", [{"entries": []}, []])
def test_a_file_with_no_entries_is_refused(tmp_path, content) -> None:
    path = tmp_path / "tp.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match="has no entries") as e:
        load_throughput(path)
    assert e.value.field == "--throughput"


def test_plan_exits_2_on_a_misspelt_throughput_file(tmp_path, monkeypatch, capsys) -> None:
    import yaml

    from ftsweep.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    bad = _write(tmp_path, [{**_entry(), "chekpoint_s": 3}], "bad.json")
    assert main(["plan", str(spec), "--throughput", str(bad)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert (
        line.startswith("ftsweep: error: --throughput entries[0]: ") and "unknown key(s) chekpoint_s" in line
    )
    good = _write(tmp_path, [_entry()], "good.json")
    assert main(["plan", str(spec), "--throughput", str(good), "--cpus", "2"]) == 0
    assert "wall time ≈ 0:34 with 2 trial(s) at once" in capsys.readouterr().out


# ---- 4: two GPU kinds for one key -------------------------------------------------------------
def test_two_gpu_kinds_for_one_key_are_ambiguous(tmp_path) -> None:
    spec = parse_spec(GPU_SPEC)
    with pytest.raises(ConfigError, match="2 GPU kinds") as e:
        plan_spec(spec, throughput=_gpu_table("NVIDIA A100", H200), gpus=1)
    assert e.value.field == "--throughput" and "NVIDIA A100, NVIDIA H200" in e.value.allowed
    # read from a file: the error names it
    path = tmp_path / "tp.json"
    write_throughput(path, [_entry(device="NVIDIA A100"), _entry(device=H200)])
    with pytest.raises(ConfigError, match="ambiguous") as e:
        plan_spec(spec, throughput=load_throughput(path), gpus=1)
    assert e.value.value == str(path)
    # a method's own entry beside another kind's wildcard entry is ambiguous too
    table = ThroughputTable({("ce", "small_cnn", 32, H200): TP, ("*", "small_cnn", 32, "NVIDIA A100"): TP})
    with pytest.raises(ConfigError, match="2 GPU kinds"):
        plan_spec(spec, throughput=table, gpus=1)


def test_gpu_kind_chooses_and_one_kind_is_used() -> None:
    spec = parse_spec(GPU_SPEC)
    slow = Throughput(15.0, 5.0, 8.0, 2.0)  # every term twice: 136 s
    table = ThroughputTable({("ce", "small_cnn", 32, "NVIDIA A100"): slow, ("ce", "small_cnn", 32, H200): TP})
    plan = plan_spec(spec, throughput=table, gpus=1, gpu_kind="NVIDIA A100")
    assert plan.jobs[0].device == "NVIDIA A100" and plan.seconds == pytest.approx(2 * TOTAL)
    plan = plan_spec(spec, throughput=table, gpus=1, gpu_kind=H200)
    assert plan.jobs[0].device == H200 and plan.seconds == pytest.approx(TOTAL)
    plan = plan_spec(spec, throughput=_gpu_table(H200), gpus=1)
    assert plan.jobs[0].device == H200 and plan.seconds == pytest.approx(TOTAL)
    # CPU trials ignore the table's GPU kinds
    cpu = ThroughputTable({**table.entries, ("ce", "small_cnn", 32, "cpu"): TP})
    assert plan_spec(parse_spec(SPEC), throughput=cpu, cpus=1).seconds == pytest.approx(TOTAL)


def test_the_cli_names_the_gpu_kind(tmp_path, monkeypatch, capsys) -> None:
    """``--gpu-kind`` picks one of the table's GPU kinds; without it two kinds are an exit-2
    error naming the flag; a kind the table lacks is refused, naming the ones it has."""
    import yaml

    from ftsweep.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(GPU_SPEC))
    table = _write(tmp_path, [_entry(device="NVIDIA A100"), _entry(device=H200)])
    base = ["plan", str(spec), "--throughput", str(table), "--gpus", "1"]
    assert main(base) == 2
    assert "ambiguous; name it with --gpu-kind" in capsys.readouterr().err
    assert main([*base, "--gpu-kind", H200]) == 0
    assert H200 in capsys.readouterr().out
    assert main([*base, "--gpu-kind", "NVIDIA V100"]) == 2
    err = capsys.readouterr().err
    assert (
        f"--gpu-kind: 'NVIDIA V100' — is not a GPU kind of the throughput table (it has: NVIDIA A100, {H200})"
        in err
    )


# ---- 5: --gpus of CPU trials ------------------------------------------------------------------
def test_gpus_of_cpu_trials_are_noted_not_printed_as_the_cluster(tmp_path, monkeypatch, capsys) -> None:
    import yaml

    from ftsweep.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    table = _write(tmp_path, [_entry()])
    assert main(["plan", str(spec), "--throughput", str(table), "--gpus", "8", "--cpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "wall time ≈ 0:34 with 2 trial(s) at once on 2 CPU(s)" in out and "GPU(s)" not in out
    assert "\nnote: --gpus 8 is not used: the trials use no GPU (resources.gpu 0)" in out
    # GPU trials: the GPUs are the cluster
    spec.write_text(yaml.safe_dump(GPU_SPEC))
    gpu_table = _write(tmp_path, [_entry(device=H200)], "gpu.json")
    assert main(["plan", str(spec), "--throughput", str(gpu_table), "--gpus", "100"]) == 0
    out = capsys.readouterr().out
    assert "wall time ≈ 0:23 with 4 trial(s) at once on 100 GPU(s)" in out and "not used" not in out


def test_huge_cpus_print_the_trials_at_once(tmp_path, monkeypatch, capsys) -> None:
    import yaml

    from ftsweep.cli import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    assert (
        main(["plan", str(spec), "--throughput", str(_write(tmp_path, [_entry()])), "--cpus", "1e308"]) == 0
    )
    (wall,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wall time")]
    assert (
        wall.startswith("wall time ≈ 0:23 with 4 trial(s) at once on 1e+308 CPU(s)") and len(wall) < 200
    )  # not 309 digits


# ---- 7: --calibrate of GPU trials without a GPU -----------------------------------------------
def test_calibrate_refuses_gpu_trials_on_a_machine_without_a_gpu(tmp_path, monkeypatch, capsys) -> None:
    import torch
    import yaml

    from ftsweep.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--throughput FILE measured on the cluster's GPU") as e:
        calibrate(parse_spec(GPU_SPEC), steps=1, eval_batches=1)
    assert e.value.field == "--calibrate" and "resources.gpu 0.5" in e.value.allowed
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(GPU_SPEC))
    assert main(["plan", str(spec), "--calibrate", "--gpus", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("ftsweep: error: --calibrate: True — the trials use a GPU (resources.gpu 0.5)")


def test_calibrate_still_times_cpu_trials_without_a_gpu(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    table = calibrate(parse_spec({**SPEC, "search_space": None, "config": {**SPEC["config"], "epochs": 1}}),
                      steps=1, eval_batches=1)  # fmt: skip
    assert set(table.entries) == {("ce", "small_cnn", 32, "cpu")}
