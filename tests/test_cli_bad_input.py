"""Bad input: one line naming field, value and what is allowed; exit 2; before Ray or MLflow."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ftsweep import cli

GOOD = """
name: t
method: scl
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, lr: 0.05, temperature: 0.1, labels_per_class: 3}
search_space: {lambda_: [0.1, 0.5]}
seeds: [0, 1]
searcher: grid
scheduler: fifo
resources: {cpu: 1, gpu: 0}
"""

UOT = """
name: u
method: uot_selection
dataset: digits_target
pretrained: none
config: {source_dataset: digits_source, k: 5, epochs: 2, labels_per_class: 4, batch_size: 16, milestones: []}
"""

FIXMATCH = """
name: f
method: fixmatch
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, iters_per_epoch: 2, labels_per_class: 3}
"""
SHARED_LR = """
name: shared
methods:
  - {method: ce}
  - {method: scl, search_space: {lr: [0.01, 0.1]}}
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, lr: 0.05, labels_per_class: 3}
"""


STAGE1 = """
name: s
method: supervised
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, iters_per_epoch: 2, labels_per_class: 3, stage1: {objective: byol}}
"""


SCHANE = GOOD.replace("method: scl", "method: schane").replace(
    "labels_per_class: 3}", "labels_per_class: 3, fewshot_ways: [5], fewshot_shots: [1]}"
)


@pytest.fixture
def no_side_effects(no_ray, monkeypatch, tmp_path):
    """Fail loudly if anything would start Ray or create an MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    yield tmp_path
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "results").exists()


def _spec(tmp: Path, text: str) -> str:
    p = tmp / "spec.yaml"
    p.write_text(textwrap.dedent(text))
    return str(p)


CASES = [
    (GOOD.replace("method: scl", "method: mlp"), "method: 'mlp' — must be one of"),
    (GOOD.replace("dataset: digits", "dataset: mnist"), "dataset: 'mnist' — must be one of"),
    (
        GOOD.replace("backbone: small_cnn", "backbone: resnet_9000"),
        "backbone: 'resnet_9000' — must be small_cnn",
    ),
    (
        GOOD.replace("searcher: grid", "searcher: bayes"),
        "searcher: 'bayes' — must be one of grid, random, optuna",
    ),
    (GOOD.replace("scheduler: fifo", "scheduler: pbt"), "scheduler: 'pbt' — must be one of fifo, asha"),
    (GOOD.replace("lr: 0.05", "lr: 0"), "config.lr: 0.0 — must be > 0"),
    (GOOD.replace("temperature: 0.1", "temperature: -1"), "config.temperature: -1.0 — must be > 0"),
    (GOOD.replace("[0.1, 0.5]", "[0.1, 1.5]"), "search_space.lambda_: 1.5 — must be in [0, 1]"),
    (
        GOOD.replace("lambda_:", "lamda:"),
        "search_space.lamda: [0.1, 0.5] — not a field of SCLConfig; did you mean 'lambda_'?",
    ),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, weight_decay: -0.1,"),
        "config.weight_decay: -0.1 — must be >= 0",
    ),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, val_fraction: 1.2,"),
        "config.val_fraction: 1.2 — must be in (0, 1)",
    ),
    (
        GOOD.replace("labels_per_class: 3", "labels_per_class: 500"),
        "config.labels_per_class: 500 — label budget: 500 per class (5000 in all) — class 0 has only 128",
    ),
    (
        GOOD.replace("pretrained: none", "pretrained: /no/such/ckpt.pt"),
        "error: pretrained: '/no/such/ckpt.pt' — must be an existing checkpoint file, auto, none or "
        "named weights (ftsweep list): no file /no/such/ckpt.pt\n",
    ),
    (
        GOOD.replace("pretrained: none", "pretrained: ckpts/missing.pt"),
        "/ckpts/missing.pt (from the working directory)\n",
    ),
    (GOOD + "colour: red\n", "colour: 'red' — unknown spec key"),
    (
        GOOD + "table: {layout: analysis.coin:table99}\n",
        "table.layout: 'analysis.coin:table99' — must name a table function",
    ),
    (GOOD.replace("seeds: [0, 1]", "seeds: [0, 0]"), "seeds: [0, 0] — must not repeat"),
    (
        GOOD.replace("resources: {cpu: 1, gpu: 0}", "resources: {cpu: 1, tpu: 1}"),
        "resources.tpu: 1 — allowed keys: cpu, gpu",
    ),
    ("name: t\nmethod: [unclosed\n", "malformed YAML at line"),
    (GOOD.replace("name: t", "name: .."), "name: '..' — must be a slug"),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, batch_size: 1,"),
        "config.batch_size: 1 — scl's contrastive term needs positive pairs",
    ),
    (GOOD.replace("dataset: digits", "dataset: ./no/such/folder"), "dataset: './no/such/folder' — "),
    (GOOD.replace("dataset: digits", "dataset: cifar10"), "dataset: 'cifar10' — dataset files not found"),
    (GOOD.replace("name: t", "name: ../up"), "name: '../up' — must be a slug"),
    (GOOD + "max_failures: -1\n", "max_failures: -1 — must be an integer >= 0"),
    ("- just\n- a list\n", "spec: 'list' — must be a YAML mapping"),
    (UOT.replace("digits_source", "./no/such/source"), "config.source_dataset: './no/such/source' — "),
    (UOT.replace("digits_source", "imagenet"), "config.source_dataset: 'imagenet' — dataset files not found"),
    # every trial configuration is checked, not only the fixed values (a searched value included)
    (
        GOOD.replace("backbone: small_cnn\n", "").replace(
            "{lambda_: [0.1, 0.5]}", "{lambda_: [0.1, 0.5], backbone: [small_cnn, resnet_9000]}"
        ),
        "search_space.backbone: 'resnet_9000' — must be small_cnn",
    ),
    (
        GOOD.replace("{lambda_: [0.1, 0.5]}", "{lambda_: [0.1, 0.5], batch_size: [64, 1]}"),
        "search_space.batch_size: 1 — scl's contrastive term needs positive pairs",
    ),
    (
        GOOD.replace("{lambda_: [0.1, 0.5]}", "{warmup_epochs: [0, 2]}"),
        "search_space.warmup_epochs: 2 — must be < epochs (2)",
    ),
    (
        GOOD.replace("backbone: small_cnn\n", "").replace("epochs: 2,", "epochs: 2, backbone: resnet_9000,"),
        "config.backbone: 'resnet_9000' — must be",
    ),
    (  # which one was meant? (before: config's replaced the top level's without a word)
        GOOD.replace("epochs: 2,", "epochs: 2, backbone: torchvision.resnet18,"),
        "config.backbone: 'torchvision.resnet18' — is also the spec's backbone: 'small_cnn'; give it once",
    ),
    (  # the job ce-digits trained on the folder (before: without a word)
        GOOD + "dataset_config: {digits: {dataset: digits_target}}\n",
        "dataset_config.digits.dataset: 'digits_target' — is not a config value: give the data as the "
        "spec's dataset: / datasets:",
    ),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, dataset: digits,"),
        "config.dataset: 'digits' — is not a config value",
    ),
    (GOOD.replace("epochs: 2,", "epochs: .nan,"), "config.epochs: nan — must be an integer"),
    (GOOD.replace("epochs: 2,", "epochs: .inf,"), "config.epochs: inf — must be an integer"),
    (GOOD.replace("lr: 0.05", "lr: .inf"), "config.lr: inf — must be a finite number"),
    (GOOD.replace("[0.1, 0.5]", "[]"), "search_space.lambda_: [] — a grid axis must be a non-empty list"),
    (GOOD.replace("[0.1, 0.5]", "{grid_search: 0.1}"), "search_space.lambda_: 0.1 — a grid axis must be"),
    (GOOD.replace("[0.1, 0.5]", "[0.1, 0.5, 0.1]"), "must not repeat a value (0.1)"),
    (GOOD + "1: a\n", "1: 'a' — the key 1 must be a string"),
    (GOOD.replace("epochs: 2,", "epochs: 2, true: 1,"), "config.True: 1 — the key True must be a string"),
    (GOOD.replace("method: scl", "method: [scl]"), "method: ['scl'] — must be one of"),
    (  # the estimate allows 129 per class; the exact split leaves 125 in class 8
        GOOD.replace("labels_per_class: 3", "labels_per_class: 126"),
        "config.labels_per_class: 126 — label budget: 126 per class (1260 in all) — class 8 has only 125",
    ),
    (
        GOOD.replace("labels_per_class: 3", "labels_per_class: 3, num_labels: 30"),
        "config.num_labels: 30 — give one of labels_per_class or num_labels in one place, not both",
    ),
    (GOOD + "experiment: ''\n", "experiment: '' — must be a non-empty string"),
    (GOOD.replace("name: t", "name: " + "a" * 129), "at most 128 characters"),
    (GOOD + "table: {rows: methdo}\n", "table.rows: 'methdo' — must be one of method, dataset, job, seed"),
    (GOOD + "table: {rows: method, cols: [dataset, lamda]}\n", "table.cols: 'lamda' — must be one of"),
    (GOOD + "table: {baseline: cee}\n", "table.baseline: 'cee' — must be one of the methods: scl"),
    (GOOD + "table: {select_by: test/acc}\n", "table.select_by: 'test/acc' — must be a validation"),
    (
        GOOD.replace("dataset: digits", "datasets: [digits, digits]"),
        "datasets: ['digits', 'digits'] — must not repeat",
    ),
    (GOOD + "asha: {grace_period: 2}\n", "asha: {'grace_period': 2} — is read only with scheduler: asha"),
    (
        GOOD.replace("seeds: [0, 1]", "seeds: [0, 4294967296]"),
        "must be a non-empty list of integers in [0, 2**32)",
    ),
    (GOOD.replace("gpu: 0}", "gpu: .inf}"), "resources.gpu: inf — must be a finite number >= 0"),
    (GOOD + "stop: {trainig_iteration: 3}\n", "stop.trainig_iteration: 3 — must be a reported metric"),
    (
        GOOD.replace("lr: 0.05", "lr: 5e-2"),
        "config.lr: '5e-2' — must be a number (YAML reads 5e-2 as a string",
    ),
    (GOOD.replace("epochs: 2,", "epochs: 2, device: cuda,"), "config.device: 'cuda' — needs a GPU per trial"),
    (  # k-means units: the paper's 2000 clusters cannot be drawn from digits_source's 1020 images
        UOT.replace("k: 5,", "k: 5, source_labels: false, num_clusters: 2000,"),
        "config.num_clusters: 2000 — must be <= the 1020 train images of digits_source",
    ),
    (
        UOT.replace("k: 5,", "k: 5, true_units: [3, 30],"),
        "config.true_units: 30 — must be a class id of digits_source",
    ),
    (  # a misspelt metric: each trial would fail after its first epoch
        GOOD + "metric: val/acuracy\n",
        "metric: 'val/acuracy' — is not reported in every epoch by scl (job scl-digits); it reports best/epoch",
    ),
    (GOOD + "stop: {train/supcn: 0.1}\n", "stop.train/supcn: 'train/supcn' — is not reported in every epoch"),
    (  # the search would override the fixed value silently
        GOOD.replace("{lambda_: [0.1, 0.5]}", "{lambda_: [0.1, 0.5], lr: [0.01, 0.1]}"),
        "config.lr: 0.05 — is also searched by method.search_space.lr, which would override it",
    ),
    (
        SCHANE.replace("fewshot_ways: [5]", "fewshot_ways: [12]"),
        "config.fewshot_ways: 12 — must be <= the 10 classes",
    ),
    (  # digits' test split: 10 × 36 images in all, but classes 2 and 8 have 35
        SCHANE.replace("fewshot_ways: [5], fewshot_shots: [1]", "fewshot_ways: [10], fewshot_shots: [21]"),
        "config.fewshot_shots: 21 — 10-way episodes of 21 shots + 15 queries (fewshot_query) need 10 "
        "classes with 36 test images each; digits's test split has 8 classes with that many",
    ),
    (  # Tune's ASHA asserts grace_period <= max_t once Ray runs
        GOOD.replace("scheduler: fifo", "scheduler: asha") + "asha: {grace_period: 5}\n",
        "asha.grace_period: 5 — must be <= max_t (2, the longest trial's epochs)",
    ),
    (
        GOOD + "num_samples: 3\n",
        "num_samples: 3 — job scl-digits has only grid axes: each of its configurations",
    ),
    (  # the 1-per-class budget takes all 10 images the 99 % validation split leaves
        FIXMATCH.replace("labels_per_class: 3", "labels_per_class: 1, val_fraction: 0.99"),
        "config.labels_per_class: 1 — leaves no unlabeled image in digits for fixmatch",
    ),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, checkpoint_format: bogus,"),
        "checkpoint_format: 'bogus' — must be one of auto",
    ),
    (
        GOOD.replace("pretrained: none", "pretrained: auto").replace(
            "epochs: 2,", "epochs: 2, checkpoint_format: moco_v2,"
        ),
        "config.checkpoint_format: 'moco_v2' — does not read pretrained: auto",
    ),
    (GOOD + "metric: val/loss\nmode: max\n", "mode: 'max' — must be min for metric val/loss"),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, milestones: [1],"),
        "config.milestones: [1] — is read only with schedule: step (this job's schedule is cosine)",
    ),
    (
        GOOD.replace("{lambda_: [0.1, 0.5]}", "{gamma: [0.1, 0.5]}"),
        "method.search_space.gamma: [0.1, 0.5] — is read only with schedule: step",
    ),
    (  # Ray shows a 1-GPU trial its GPU as cuda:0 (CUDA_VISIBLE_DEVICES)
        GOOD.replace("epochs: 2,", "epochs: 2, device: 'cuda:1',").replace("gpu: 0}", "gpu: 1}"),
        "config.device: 'cuda:1' — names a GPU the trial does not see: Ray shows it its 1 GPU(s) as cuda:0",
    ),
    (  # a 224-px ViT fed digits' 32-px images fails at its first batch
        GOOD.replace("backbone: small_cnn", "backbone: vit_tiny_patch16_224"),
        "image_size: 32 — vit_tiny_patch16_224 takes 224×224 images only",
    ),
    (  # the table is made once the sweep has run: a typo would leave none
        GOOD + "table: {metric: test/accuracy}\n",
        "table.metric: 'test/accuracy' — is logged by no trial of the spec; they log best/epoch",
    ),
    (  # SCHaNe logs its episodes as fewshot/{N}way{K}shot
        SCHANE + "table: {metric: fewshot/5way_1shot}\n",
        "table.metric: 'fewshot/5way_1shot' — is logged by no trial",
    ),
    (  # COIN's Table 4 reads alpha, which scl runs do not have: it failed once the sweep ended
        GOOD + 'table: {layout: "analysis.coin:table4"}\n',
        "table.layout: 'analysis.coin:table4' — is a layout of coin, which this spec does not run (it runs scl)",
    ),
    (
        GOOD + "table: {rows: method, cols: method}\n",
        "table.cols: 'method' — shares ['method'] with table.rows",
    ),
    (GOOD + "table: {cols: [dataset, method]}\n", "table.cols: ['dataset', 'method'] — shares ['method']"),
    (
        GOOD + "table: {rows: [lambda_, lambda_]}\n",
        "table.rows: ['lambda_', 'lambda_'] — names ['lambda_'] twice",
    ),
    (  # the Δ row compares method rows: with other rows it was dropped without a word
        GOOD + "table: {rows: lambda_, baseline: scl}\n",
        "table.baseline: 'scl' — needs rows: method (it names the method row",
    ),
    (  # each cell picked ce's or scl's run by validation and showed it under no name
        SHARED_LR + "table: {rows: lr}\n",
        "table.rows: 'lr' — leaves method out of rows and cols, so a cell would hold the runs of "
        "the spec's 2 methods (ce, scl) and show one of them unnamed",
    ),
    (  # one dataset's validation split does not rank another dataset's runs
        GOOD.replace("dataset: digits", "datasets: [digits, digits_source]") + "table: {cols: lambda_}\n",
        "table.cols: 'lambda_' — leaves dataset out of rows and cols, so a cell would hold the runs "
        "of the spec's 2 datasets (digits, digits_source)",
    ),
    (
        GOOD + "table: {rows: [method], baseline: cee}\n",
        "table.baseline: 'cee' — must be one of the methods: scl",
    ),
    (  # logged by COIN, not by CE: CE's rows could select no configuration
        SHARED_LR.replace("{method: ce}", "{method: coin}").replace("method: scl,", "method: ce,")
        + "table: {select_by: val/s_dbw}\n",
        "table.select_by: 'val/s_dbw' — is not logged by ce (job ce-digits); it logs best/epoch",
    ),
    # a dataset or table metric that is no single name: tracebacks (unhashable list, None)
    (GOOD.replace("dataset: digits", "dataset: [digits]"), "dataset: ['digits'] — must be a dataset name"),
    (GOOD.replace("dataset: digits", "dataset: null"), "dataset: None — must be a dataset name"),
    (GOOD.replace("dataset: digits", "datasets: [digits, 5]"), "dataset: 5 — must be a dataset name"),
    (GOOD + "table: {metric: [test/acc]}\n", "table.metric: ['test/acc'] — must be one name"),
    (GOOD + "table: {baseline: [scl]}\n", "table.baseline: ['scl'] — must be one name"),
    # a counter's stop threshold at or below its first value stopped every trial after epoch 1
    (GOOD + "stop: {training_iteration: -1}\n", "stop.training_iteration: -1 — must be a number > 0"),
    (GOOD + "stop: {sched/epoch: 0}\n", "stop.sched/epoch: 0 — must be a number > 0"),
    (GOOD + "stop: {time_total_s: {below: 60}}\n", "stop.time_total_s: {'below': 60} — must be a number > 0"),
    (GOOD + "description: [a, b]\n", "description: ['a', 'b'] — must be a string"),
    (
        SHARED_LR.replace("{method: ce}", '{method: ce, name: "ce\\nv2"}'),
        "methods[0].name: 'ce\\nv2' — must be a string of at most 100 printable characters",
    ),
    (  # the validation split keeps 14 images of digits' smallest class: 90 was 14 there, unsaid
        GOOD.replace("labels_per_class: 3", "labels_per_class: 100, val_labels_per_class: 15"),
        "config.val_labels_per_class: 15 — the validation split (val_fraction 0.1) of digits has only "
        "14 images in its smallest class; allowed: at most 14, or a larger val_fraction",
    ),
    (  # a stage-1 column that no stage-1 config has: read only after the sweep, an empty table
        STAGE1 + "table: {cols: stage1.objectiv}\n",
        "table.cols: 'stage1.objectiv' — must be one of method, dataset, job, seed or a config field "
        "of the spec's methods (stage1.<field>: a field of the target-pretraining config)",
    ),
    (  # the step factor counts each occurrence: gamma² at epoch 1
        GOOD.replace("epochs: 2,", "epochs: 2, schedule: step, milestones: [1, 1],"),
        "config.milestones: [1, 1] — names epoch 1 twice, which multiplies the lr by gamma twice there",
    ),
    (
        GOOD.replace("epochs: 2,", "epochs: 2, cache_dir: /etc/passwd,"),
        "config.cache_dir: '/etc/passwd' — must be a directory (or a path not made yet); /etc/passwd is a file",
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES)
@pytest.mark.parametrize("command", ["run", "validate", "plan"])
def test_bad_spec_exits_2_with_one_line(
    text: str, message: str, command: str, no_side_effects, capsys
) -> None:
    code = cli.main([command, _spec(no_side_effects, text)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ftsweep: error: ")
    assert message in err, err


def test_good_spec_validates(no_side_effects, capsys) -> None:
    assert cli.main(["validate", _spec(no_side_effects, GOOD)]) == 0
    assert "OK — 1 jobs (scl-digits), 2 seed(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text",
    [
        SCHANE,  # 5-way 1-shot + 15 queries fits digits' test split
        UOT.replace("k: 5,", "k: 5, true_units: [3, 29],"),
        GOOD + "metric: train/supcon\n",
        GOOD + "stop: {val/acc: 99.0}\n",
        SHARED_LR,  # a shared layer's lr, searched by one of the methods (ce keeps 0.05)
        SHARED_LR + "table: {rows: job, cols: lr}\n",  # a job is one method on one dataset
        SHARED_LR + "table: {rows: lr, cols: method}\n",
        FIXMATCH,
        GOOD + "metric: val/loss\n",  # mode min by default for a loss
        GOOD.replace("epochs: 2,", "epochs: 2, milestones: [1], schedule: step,"),
        GOOD.replace("backbone: small_cnn", "backbone: vit_tiny_patch16_224").replace(
            "epochs: 2,", "epochs: 2, image_size: 224,"
        ),
        GOOD.replace("pretrained: none", "pretrained: auto").replace(
            "epochs: 2,", "epochs: 2, checkpoint_format: simclr,"
        ),
        SCHANE + "table: {metric: fewshot/5way1shot}\n",
        UOT + "table: {metric: selection/recall}\n",  # digits_source → digits_target is known
        GOOD + "table: {metric: time_total_s, select_by: train/supcon}\n",  # Tune's own field
        GOOD + "table: {rows: [method], cols: [dataset, lambda_], baseline: scl}\n",
        SHARED_LR.replace("{method: ce}", "{method: coin}") + "table: {metric: val/s_dbw}\n",
        STAGE1 + "table: {cols: stage1.objective}\n",
        GOOD.replace("labels_per_class: 3", "labels_per_class: 100, val_labels_per_class: 14"),
    ],
)
def test_the_good_side_of_each_new_check_validates(text: str, no_side_effects, capsys) -> None:
    assert cli.main(["validate", _spec(no_side_effects, text)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--resume"], "--resume: "),
        (["--retry-failed"], "--retry-failed: True — goes with --resume"),
    ],
)
def test_resume_flags_without_a_version_to_resume(flags, message, no_side_effects, capsys) -> None:
    code = cli.main(["run", _spec(no_side_effects, GOOD), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    if flags == ["--resume"]:
        assert "no version of this sweep" in err


def test_a_checkpoint_that_does_not_load_or_fit_exits_2(no_side_effects, capsys) -> None:
    import torch

    from ftsweep.backbones import create_backbone

    junk = no_side_effects / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 64)
    other = no_side_effects / "resnet.pt"
    torch.save(create_backbone("torchvision.resnet18").state_dict(), other)
    for path, why in ((junk, "pretrained: "), (other, "pretrained: ")):
        code = cli.main(
            ["validate", _spec(no_side_effects, GOOD.replace("pretrained: none", f"pretrained: {path}"))]
        )
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and why in err and str(path) in err, err


def test_missing_spec_file(no_side_effects, capsys) -> None:
    assert cli.main(["run", "nope.yaml"]) == 2
    assert "spec: 'nope.yaml' — must be an existing YAML file" in capsys.readouterr().err


def test_checkpoint_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    import torch

    from ftsweep.backbones import CheckpointError, create_backbone, load_backbone_weights

    p = tmp_path / "bad.pt"
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match="is not a state dict"):
        load_backbone_weights(create_backbone("small_cnn"), p)


FIXMATCH_BUDGETS = """
name: f
method: fixmatch
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, iters_per_epoch: 2, batch_size: 8}
search_space: {labels_per_class: [3, 5]}
"""


def test_a_searched_label_budget_is_checked_per_value(no_side_effects, capsys) -> None:
    # FixMatch needs a label budget: a searched one is a budget for every trial (it used to be
    # checked as the class default, None, and refused)
    assert cli.main(["validate", _spec(no_side_effects, FIXMATCH_BUDGETS)]) == 0
    bad = FIXMATCH_BUDGETS.replace("[3, 5]", "[3, 126]")
    assert cli.main(["validate", _spec(no_side_effects, bad)]) == 2
    assert "search_space.labels_per_class: 126 — label budget" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04" + b"\x00" * 64])
def test_an_empty_or_truncated_checkpoint_is_bad_input(content: bytes, no_side_effects, capsys) -> None:
    ckpt = no_side_effects / "weights.pt"
    ckpt.write_bytes(content)
    text = GOOD.replace("pretrained: none", f"pretrained: {ckpt}")
    assert cli.main(["validate", _spec(no_side_effects, text)]) == 2
    err = capsys.readouterr().err
    assert f"pretrained: '{ckpt}' — {ckpt} cannot be read as a torch checkpoint ({len(content)} bytes" in err


@pytest.mark.parametrize("flag", ["--gpus=-1", "--gpus=0", "--cpus=nan", "--gpus=inf"])
def test_plan_refuses_a_cluster_size_that_is_not_a_positive_number(
    flag: str, no_side_effects, capsys
) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["plan", _spec(no_side_effects, GOOD), flag])
    assert e.value.code == 2
    assert "must be a finite number > 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"entries: [unclosed", "must be valid JSON or YAML (UTF-8)"),
        (b"\xff\xfe", "must be valid JSON or YAML (UTF-8)"),
        (
            b'[{"method": "scl", "backbone": "small_cnn", "image_size": 32, "device": "cpu", '
            b'"train_images_per_s": "fast", "eval_images_per_s": 10}]',
            "must be finite numbers, image_size an integer",
        ),
        (
            b'[{"method": "scl", "backbone": "small_cnn", "image_size": "big", "device": "cpu", '
            b'"train_images_per_s": 10, "eval_images_per_s": 10}]',
            "must be finite numbers, image_size an integer",
        ),
    ],
)
def test_plan_refuses_a_malformed_throughput_file(
    content: bytes, message: str, no_side_effects, capsys
) -> None:
    table = no_side_effects / "tp.json"
    table.write_bytes(content)
    assert cli.main(["plan", _spec(no_side_effects, GOOD), "--throughput", str(table)]) == 2
    assert message in capsys.readouterr().err


def test_a_method_label_with_a_slash_makes_a_trial_folder_tune_accepts() -> None:
    from types import SimpleNamespace

    from ray.tune.experiment import Trial

    from ftsweep.routing import JOB_KEY
    from ftsweep.runner import trial_dirname, trial_name

    job = {JOB_KEY: "Random (w/ labels)-digits_target"}  # UOT Table 1b's row label
    with pytest.raises(ValueError, match="must not contain '/'"):  # Tune's own check
        Trial("__fake", config=job, trial_id="t1", stub=True, trial_dirname_creator=trial_name)
    Trial("__fake", config=job, trial_id="t1", stub=True, trial_dirname_creator=trial_dirname)
    assert trial_dirname(SimpleNamespace(config=job, trial_id="t1")) == "Random (w- labels)-digits_target_t1"
    long = trial_dirname(SimpleNamespace(config={JOB_KEY: "x" * 400}, trial_id="t2"))
    assert long == "x" * 160 + "_t2"


def test_run_refuses_resume_with_new(no_side_effects, capsys) -> None:
    assert cli.main(["run", _spec(no_side_effects, GOOD), "--resume", "--new"]) == 2
    assert "--new: True — contradicts --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stage1", "message"),
    [
        ("{objective: byol, dataset: cifar10}", "config.stage1.dataset: 'cifar10' — dataset files not found"),
        (
            "{objective: byol, pretrained: /no/such.pt}",
            "config.stage1.pretrained: '/no/such.pt' — no such checkpoint",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_stage1_config_is_checked_before_ray(
    stage1: str, message: str, command: str, no_side_effects, capsys
) -> None:
    assert cli.main(["validate", _spec(no_side_effects, STAGE1)]) == 0
    capsys.readouterr()
    text = STAGE1.replace("{objective: byol}", stage1)
    assert cli.main([command, _spec(no_side_effects, text)]) == 2
    assert message in capsys.readouterr().err


def test_validate_checks_the_smoke_block_without_smoke(no_side_effects, capsys) -> None:
    # run --smoke reads the block: a mistake there is found by a plain validate, not only then
    assert cli.main(["validate", _spec(no_side_effects, GOOD + "smoke: {epochs: 1}\n")]) == 0
    capsys.readouterr()
    assert cli.main(["validate", _spec(no_side_effects, GOOD + "smoke: {epochs: -5}\n")]) == 2
    assert "smoke.epochs (with --smoke): -5 — must be >= 1" in capsys.readouterr().err


def test_a_file_that_is_no_torch_file_is_named_so(no_side_effects, capsys) -> None:
    """A failed download saved as the checkpoint (an HTML page) is not "a pickled object"
    (whose advice is to unpickle it without weights_only)."""
    ckpt = no_side_effects / "weights.pt"
    ckpt.write_bytes(b"<html>not found</html>\n")
    text = GOOD.replace("pretrained: none", f"pretrained: {ckpt}")
    assert cli.main(["validate", _spec(no_side_effects, text)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights_only" not in err
    assert f"{ckpt} is not a torch checkpoint (23 bytes, starting b'<html>not found<'): neither" in err


def test_random_bytes_as_the_checkpoint_are_named_so(no_side_effects, capsys) -> None:
    """Bytes the weights-only unpickler starts reading as a pickle raise its own errors (an
    IndexError here): a traceback before."""
    ckpt = no_side_effects / "weights.pt"
    ckpt.write_bytes(bytes(range(81, 256)) * 4)
    text = GOOD.replace("pretrained: none", f"pretrained: {ckpt}")
    assert cli.main(["validate", _spec(no_side_effects, text)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{ckpt} is not a torch checkpoint (700 bytes, starting b'QRSTUVWXYZ" in err


def test_a_spec_that_is_not_utf8_is_named_so(no_side_effects, capsys) -> None:
    path = no_side_effects / "latin1.yaml"
    path.write_bytes(
        textwrap.dedent(GOOD).replace("name: t", "name: t\ndescription: caf\u00e9").encode("latin-1")
    )
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"ftsweep: error: spec: {str(path)!r} — must be UTF-8 text (byte 0xe9 at offset 25 is not)\n"
    )


def test_a_checkpoint_with_nan_weights_is_bad_input(no_side_effects, capsys) -> None:
    import torch

    from ftsweep.backbones import create_backbone

    state = create_backbone("small_cnn").state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point())
    good = no_side_effects / "good.pt"
    torch.save(state, good)
    assert (
        cli.main(
            ["validate", _spec(no_side_effects, GOOD.replace("pretrained: none", f"pretrained: {good}"))]
        )
        == 0
    )
    state[key].view(-1)[3] = float("nan")
    bad = no_side_effects / "nan.pt"
    torch.save(state, bad)
    capsys.readouterr()
    assert (
        cli.main(["validate", _spec(no_side_effects, GOOD.replace("pretrained: none", f"pretrained: {bad}"))])
        == 2
    )
    err = capsys.readouterr().err
    assert f"holds NaN or infinite values in 1 tensors ({key}): training" in err


def test_uot_projection_features_from_a_checkpoint_without_a_head_are_bad_input(
    no_side_effects, capsys
) -> None:
    """``feature_layer: projection`` on a checkpoint with no MoCo head passed validation, and every
    trial failed when it built its selection features; ``auto`` on it selects on the pooled
    features, and a MoCo checkpoint's head is checked for the backbone's width."""
    import torch

    from ftsweep.backbones import create_backbone

    plain = no_side_effects / "plain.pt"
    state = create_backbone("small_cnn").state_dict()
    torch.save(state, plain)
    base = UOT.replace("pretrained: none", f"pretrained: {plain}")
    assert cli.main(["validate", _spec(no_side_effects, base)]) == 0  # feature_layer: auto
    projection = base.replace("milestones: []}", "milestones: [], feature_layer: projection}")
    capsys.readouterr()
    assert cli.main(["validate", _spec(no_side_effects, projection)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "config.feature_layer: 'projection' — feature_layer projection → projection needs the " in err
    moco = no_side_effects / "moco.pt"
    wide = {"fc.0.weight": torch.zeros(64, 512), "fc.0.bias": torch.zeros(64)}
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in (state | wide).items()}}, moco)
    auto = UOT.replace("pretrained: none", f"pretrained: {moco}")
    assert cli.main(["validate", _spec(no_side_effects, auto)]) == 2
    assert "error: feature_layer: 'auto' — " in (err := capsys.readouterr().err) and (
        "it takes 512 features but small_cnn gives 128" in err
    )
    no_selection = projection.replace("k: 5,", "k: 5, selection: none,")
    assert cli.main(["validate", _spec(no_side_effects, no_selection)]) == 0


CIFAR = """
name: c
method: ce
dataset: cifar10
backbone: small_cnn
pretrained: none
config: {epochs: 2, labels_per_class: 3, data_root: DATA}
"""


def test_registered_dataset_files_that_fail_their_checksums_are_bad_input(no_side_effects, capsys) -> None:
    """An empty ``cifar-10-batches-py/`` (a failed extraction) or a batch cut short passed
    validation — only the folder's existence was checked — and failed every trial."""
    from torchvision.datasets import CIFAR10

    data = no_side_effects / "data"
    (data / "cifar-10-batches-py").mkdir(parents=True)
    spec = _spec(no_side_effects, CIFAR.replace("DATA", str(data)))
    assert cli.main(["validate", spec]) == 2
    first = data / "cifar-10-batches-py" / "data_batch_1"
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        f"dataset: 'cifar10' — dataset file {first} fails torchvision's integrity check (missing) (and 6 more)"
        in err
    )
    first.write_bytes(b"\x80\x02 cut short")
    assert cli.main(["validate", spec]) == 2
    md5 = CIFAR10.train_list[0][1]
    err = capsys.readouterr().err
    assert f"dataset file {first} fails torchvision's integrity check (md5 " in err
    assert f", published {md5}) (and 6 more)" in err


def test_download_true_fetches_each_dataset_once_before_ray(no_side_effects, monkeypatch, capsys) -> None:
    """``download: true`` passed validation and every trial downloaded into the same folder at
    once; offline, each failed with a raw URLError. Now the driver downloads once, before Ray
    starts, and a failed download is one line (exit 2)."""
    import urllib.error

    import ftsweep.data.registry

    data = no_side_effects / "data"
    spec = _spec(
        no_side_effects,
        CIFAR.replace("DATA", str(data)).replace("data_root:", "download: true, data_root:")
        + "search_space: {lr: [0.1, 0.2]}\n",
    )
    asked = []

    def offline(name, root, download=False):
        asked.append((name, root, download))
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(ftsweep.data.registry, "load_dataset", offline)
    assert cli.main(["validate", spec]) == 0  # validation itself downloads nothing
    assert asked == []
    assert cli.main(["run", spec]) == 2  # no_side_effects: Ray would fail the test
    assert asked == [("cifar10", str(data), True)]  # once for the job's two trials
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"error: dataset: 'cifar10' — download into {data} failed (URLError: <urlopen error" in err
    assert "place its files there (cifar-10-batches-py) or run once where the network is reached" in err


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("http://127.0.0.1:8265", "is a dashboard address (what `ray job submit --address` takes)"),
        ("127.0.0.1", "must be host:port (the head's GCS address), ray://host:port, auto or local"),
        ("127.0.0.1:http", "must be host:port"),
        ("CLOSED", "no Ray head answers at 127.0.0.1:CLOSED ("),
        ("ray://127.0.0.1:CLOSED", "no Ray head answers at 127.0.0.1:CLOSED ("),
    ],
)
def test_an_address_no_head_answers_at_is_refused_at_once(address, message, no_side_effects, capsys) -> None:
    port = str(_closed_port())
    address = address.replace("CLOSED", f"127.0.0.1:{port}" if address == "CLOSED" else port)
    assert cli.main(["run", _spec(no_side_effects, GOOD), "--address", address]) == 2
    err = capsys.readouterr().err
    assert f"--address: {address!r} — " in err and message.replace("CLOSED", port) in err, err
    assert len(err.strip().splitlines()) == 1  # and Ray never started (no_side_effects)


def test_ray_address_from_the_environment_is_checked_by_its_name(
    no_side_effects, monkeypatch, capsys
) -> None:
    port = _closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    assert cli.main(["run", _spec(no_side_effects, GOOD)]) == 2
    assert f"RAY_ADDRESS: '127.0.0.1:{port}' — no Ray head answers" in capsys.readouterr().err


def test_an_address_where_something_listens_passes_the_check() -> None:
    """A head's GCS port accepts connections: the check lets ray.init attach (auto and local
    are Ray's to find or start)."""
    import socket

    from ftsweep.runner import check_address

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_address(f"127.0.0.1:{port}", env={})
        check_address(None, env={"RAY_ADDRESS": f"ray://localhost:{port}"})
    for value in ("auto", "local"):
        check_address(value, env={})
    check_address(None, env={})


def test_a_pretrained_path_under_the_home_folder_is_read_there(no_side_effects, monkeypatch, capsys) -> None:
    """``pretrained: ~/ckpt.pt`` names the file in ``$HOME`` (it was refused as ``no file`` —
    naming the very file that exists); trials get it absolute."""
    import torch

    from ftsweep.backbones import create_backbone
    from ftsweep.config.spec import load_spec
    from ftsweep.runner import prepare_paths

    home = no_side_effects / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    torch.save(create_backbone("small_cnn").state_dict(), home / "ckpt.pt")
    spec = _spec(no_side_effects, GOOD.replace("pretrained: none", "pretrained: ~/ckpt.pt"))
    assert cli.main(["validate", spec]) == 0, capsys.readouterr().err
    (job,) = prepare_paths(load_spec(spec), load_spec(spec).jobs(), no_side_effects / "r")
    assert job.fixed["pretrained"] == str(home / "ckpt.pt")


def test_an_empty_pretrained_value_is_refused_not_random_init(no_side_effects, capsys) -> None:
    """``pretrained: ""`` (a template's unset variable) trained from random weights, silently."""
    assert (
        cli.main(["validate", _spec(no_side_effects, GOOD.replace("pretrained: none", 'pretrained: ""'))])
        == 2
    )
    err = capsys.readouterr().err
    assert "spec.pretrained: '' — is empty; give a checkpoint file, named weights" in err
    assert "or none for a randomly initialised backbone" in err
