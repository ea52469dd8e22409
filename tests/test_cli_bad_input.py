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


@pytest.fixture
def no_side_effects(monkeypatch, tmp_path):
    """Fail loudly if anything would start Ray or create an MLflow store."""
    import ftsweep.runner

    def boom(*a, **k):
        raise AssertionError("Ray/MLflow must not start on bad input")

    monkeypatch.setattr(ftsweep.runner, "init_ray", boom)
    monkeypatch.setattr(ftsweep.runner, "run_sweep", boom)
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
        "config.labels_per_class: 500 — 5000 labels requested",
    ),
    (
        GOOD.replace("pretrained: none", "pretrained: /no/such/ckpt.pt"),
        "pretrained: '/no/such/ckpt.pt' — must be an existing checkpoint file",
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
    (  # k-means units: the paper's 2000 clusters cannot be drawn from digits_source's 1020 images
        UOT.replace("k: 5,", "k: 5, source_labels: false, num_clusters: 2000,"),
        "config.num_clusters: 2000 — must be <= the 1020 train images of digits_source",
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES)
@pytest.mark.parametrize("command", ["run", "validate"])
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
