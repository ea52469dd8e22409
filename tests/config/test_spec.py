"""Spec parsing: --smoke shrinking, layering of config sources, every shipped spec validates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from ray import tune

from ftsweep.config import ConfigError
from ftsweep.config.spec import SMOKE_OVERRIDES, load_spec, parse_spec
from ftsweep.runner import check_jobs, check_pretrained

SWEEPS = sorted((Path(__file__).resolve().parents[2] / "sweeps").glob("*.yaml"))

RAW = {
    "name": "t",
    "methods": [
        {"method": "ce"},
        {"method": "scl", "config": {"temperature": 0.3}, "search_space": {"lambda_": [0.1, 0.3, 0.5]}},
    ],
    "datasets": ["digits", "cifar10"],
    "backbone": "torchvision.resnet18",
    "pretrained": "none",
    "config": {"epochs": 100, "lr": 0.1, "batch_size": 256},
    "dataset_config": {"cifar10": {"lr": 0.01}},
    "seeds": [0, 1, 2],
}


def test_layers_and_jobs() -> None:
    spec = parse_spec(RAW)
    jobs = {j.name: j for j in spec.jobs()}
    assert sorted(jobs) == ["ce-cifar10", "ce-digits", "scl-cifar10", "scl-digits"]
    assert jobs["ce-cifar10"].fixed["lr"] == 0.01 and jobs["ce-digits"].fixed["lr"] == 0.1
    assert jobs["scl-digits"].fixed["temperature"] == 0.3
    assert jobs["scl-digits"].space["lambda_"] == tune.grid_search([0.1, 0.3, 0.5])
    assert spec.seeds == (0, 1, 2) and spec.experiment == "t"


def test_smoke_shrinks_everything() -> None:
    spec = parse_spec({**RAW, "smoke": {"labels_per_class": 2}}, smoke=True)
    assert {j.dataset for j in spec.jobs()} == {"digits"}  # ce and scl have no smoke dataset of their own
    assert spec.backbone == "small_cnn" and spec.pretrained == "auto"
    assert spec.seeds == (0,) and spec.experiment == "t-smoke"
    job = {j.name: j for j in spec.jobs()}["scl-digits"]
    assert job.space["lambda_"] == tune.grid_search([0.1, 0.3])
    for k, v in SMOKE_OVERRIDES.items():
        if k in job.fixed:
            assert job.fixed[k] == v, k
    assert job.fixed["labels_per_class"] == 2 and job.fixed["epochs"] == 2


def test_label_budget_override_replaces_the_other_form() -> None:
    raw = {**RAW, "config": {**RAW["config"], "num_labels": 40}, "smoke": {"labels_per_class": 2}}
    job = parse_spec(raw, smoke=True).jobs()[0]
    assert "num_labels" not in job.fixed and job.fixed["labels_per_class"] == 2


def test_space_bounds_are_checked_for_ranges() -> None:
    with pytest.raises(ConfigError, match="no module search_spaces.scl|has no function"):
        parse_spec({**RAW, "methods": [{"method": "scl", "search_space": "search_spaces.scl:bad"}]})


def test_pretrained_auto_needs_digits_small_cnn() -> None:
    spec = parse_spec({**RAW, "pretrained": "auto"})
    with pytest.raises(
        ConfigError, match="auto builds ftsweep's SimCLR checkpoint for digits \\+ small_cnn only"
    ):
        check_pretrained(spec.jobs())


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_shipped_spec_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.jobs()
    smoke = load_spec(path, smoke=True)
    # every trial configuration of the smoke run passes the checks `run` makes before Ray starts
    # (a searched label budget, say, is checked per value, not as the class default)
    check_jobs(smoke)
    assert all(j.fixed["dataset"].startswith("digits") for j in smoke.jobs())


def test_smoke_value_replaces_a_grid_axis_of_the_same_key() -> None:
    raw = {
        **RAW,
        "methods": [{"method": "scl", "search_space": {"epochs": [50, 100], "lambda_": [0.1, 0.9]}}],
        "config": {"lr": 0.1, "batch_size": 256},
    }
    job = parse_spec(raw, smoke=True).jobs()[0]
    assert job.fixed["epochs"] == 2 and "epochs" not in job.space
    assert job.space["lambda_"] == tune.grid_search([0.1, 0.9])


def test_smoke_backbone_and_checkpoint_replace_searched_ones() -> None:
    """``--smoke`` trains its own backbone from its own checkpoint (``smoke:``'s ``backbone`` /
    ``pretrained``, small_cnn / auto by default): a searched checkpoint or backbone is replaced,
    as a smoke value replaces a config axis. It was refused ("pretrained: 'auto' — is also
    searched"), a value the user never wrote."""
    raw = {
        **RAW,
        "methods": [{"method": "ce", "search_space": {"pretrained": ["a.pt", "b.pt"], "lr": [0.1, 0.2]}}],
        "datasets": ["digits"],
        "dataset_config": {},
        "config": {"epochs": 100, "batch_size": 256},
    }
    raw.pop("pretrained"), raw.pop("backbone")
    job = parse_spec(raw, smoke=True).jobs()[0]
    assert job.fixed["pretrained"] == "auto" and job.fixed["backbone"] == "small_cnn"
    assert set(job.space) == {"lr"}
    raw["methods"][0]["search_space"] = {"backbone": ["torchvision.resnet18", "torchvision.resnet50"]}
    job = parse_spec(raw, smoke=True).jobs()[0]
    assert job.fixed["backbone"] == "small_cnn" and "backbone" not in job.space
    full = parse_spec(raw).jobs()[0]  # without --smoke the axis stays
    assert full.space["backbone"] == tune.grid_search(["torchvision.resnet18", "torchvision.resnet50"])


def test_a_method_s_own_dataset_layer_comes_last(tmp_path) -> None:
    # UOT's appendix Table 4: each row's own settings per dataset (Fig. 3's baselines ran UOT's)
    import yaml

    scl = {
        "method": "scl",
        "config": {"temperature": 0.3, "lr": 0.2},
        "dataset_config": {"cifar10": {"lr": 0.003, "temperature": 0.5}},
    }
    spec = parse_spec({**RAW, "methods": [{"method": "ce"}, scl]})
    jobs = {j.name: j for j in spec.jobs()}
    assert jobs["scl-cifar10"].fixed["lr"] == 0.003 and jobs["scl-cifar10"].fixed["temperature"] == 0.5
    assert jobs["scl-cifar10"].source["lr"] == "methods[1].dataset_config.cifar10.lr"
    assert jobs["scl-digits"].fixed["lr"] == 0.2  # its own config: other datasets
    assert jobs["ce-cifar10"].fixed["lr"] == 0.01 and jobs["ce-digits"].fixed["lr"] == 0.1
    bad = {**scl, "dataset_config": {"cub200": {"lr": 0.1}}}
    with pytest.raises(ConfigError) as e:
        parse_spec({**RAW, "methods": [{"method": "ce"}, bad]})
    assert (e.value.field, e.value.value) == ("methods[1].dataset_config.cub200", {"lr": 0.1})
    assert "must name one of the spec's datasets: digits, cifar10" in str(e.value)
    for value, field in (
        ([1], "methods[1].dataset_config"),
        ({"cifar10": 3}, "methods[1].dataset_config.cifar10"),
    ):
        with pytest.raises(ConfigError) as e:
            parse_spec({**RAW, "methods": [{"method": "ce"}, {**scl, "dataset_config": value}]})
        assert e.value.field == field
    searched = {**scl, "search_space": {"temperature": [0.1, 0.2]}, "config": {}}
    with pytest.raises(ConfigError) as e:  # fixed for this method alone and searched
        parse_spec({**RAW, "methods": [{"method": "ce"}, searched]})
    assert e.value.field == "methods[1].dataset_config.cifar10.temperature"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**RAW, "methods": [{"method": "ce"}, scl]}))
    with pytest.raises(ConfigError, match=r"scl-cifar10: methods\[1\].dataset_config.cifar10.lr sets its lr"):
        load_spec(path, overrides=["dataset_config.cifar10.lr=0.5"])
    spec = load_spec(path, overrides=["methods.1.dataset_config.cifar10.lr=0.5"])
    assert {j.name: j.fixed["lr"] for j in spec.jobs()}["scl-cifar10"] == 0.5


def test_a_searched_key_fixed_for_that_method_alone_is_refused() -> None:
    # one method: every layer is its own; several: its own config, not the shared layers
    one = {**RAW, "methods": [{"method": "scl", "search_space": {"lr": [0.01, 0.1]}}]}
    with pytest.raises(ConfigError, match=r"is also searched by method.search_space.lr") as e:
        parse_spec(one)
    assert (e.value.field, e.value.value) == ("config.lr", 0.1)
    with pytest.raises(ConfigError) as e:  # the per-dataset layer, no shared config value
        parse_spec({**one, "config": {"epochs": 100}})
    assert (e.value.field, e.value.value) == ("dataset_config.cifar10.lr", 0.01)
    own = {"method": "scl", "config": {"lr": 0.2}, "search_space": {"lr": [0.01, 0.1]}}
    with pytest.raises(ConfigError) as e:
        parse_spec({**RAW, "methods": [{"method": "ce"}, own]})
    assert (e.value.field, e.value.value) == ("methods[1].config.lr", 0.2)
    shared = parse_spec({**RAW, "methods": [{"method": "ce"}, {**own, "config": {}}]})
    ce, scl = (j for j in shared.jobs() if j.dataset == "digits")
    assert ce.fixed["lr"] == 0.1 and "lr" in scl.space  # the shared value serves ce


def test_smoke_keeps_a_swept_axis_that_the_method_smoke_defaults_also_set() -> None:
    raw = {**RAW, "methods": [{"method": "coin", "search_space": {"alpha": [0.1, 0.3, 0.5]}}]}
    job = parse_spec(raw, smoke=True).jobs()[0]
    assert job.space["alpha"] == tune.grid_search([0.1, 0.3]) and "alpha" not in job.fixed


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../up", "x y", "", "naïve", 3, "a" * 129])
def test_name_must_be_a_safe_slug(name) -> None:
    with pytest.raises(ConfigError, match="must be a slug of letters, digits") as e:
        parse_spec({**RAW, "name": name})
    assert e.value.field == "name"


def test_unset_values_keep_the_method_defaults() -> None:
    """The spec adds only what it states: no dataset, backbone or checkpoint is injected."""
    from ftsweep.methods.uot_selection import UotSelectionConfig

    (job,) = parse_spec({"name": "t", "method": "uot_selection", "config": {"k": 5}}).jobs()
    default = {f.name: f.default for f in dataclasses.fields(UotSelectionConfig)}
    assert job.dataset == default["dataset"] and job.name == f"uot_selection-{default['dataset']}"
    assert "backbone" not in job.fixed and "pretrained" not in job.fixed
    assert job.value("backbone") == default["backbone"] and job.value("pretrained") == default["pretrained"]


def test_smoke_dataset_comes_from_the_method_record_unless_the_spec_gives_one() -> None:
    from ftsweep.registry import methods

    (job,) = parse_spec({"name": "t", "method": "uot_selection"}, smoke=True).jobs()
    assert job.dataset == methods()["uot_selection"].smoke["dataset"] == job.fixed["dataset"]
    (job,) = parse_spec(
        {"name": "t", "method": "ce", "smoke": {"dataset": "digits_target"}}, smoke=True
    ).jobs()
    assert job.dataset == job.fixed["dataset"] == "digits_target"


def test_jobs_are_expanded_once(monkeypatch) -> None:
    import ftsweep.config.spec as spec_mod

    calls = []
    real = spec_mod.validate_points
    monkeypatch.setattr(spec_mod, "validate_points", lambda *a: calls.append(1) or real(*a))
    spec = parse_spec(RAW)
    assert len(calls) == 4
    spec.jobs(), spec.jobs()
    assert len(calls) == 4


def test_overrides_apply_dotted_yaml_values_and_are_validated(tmp_path) -> None:
    import yaml

    from ftsweep.config.spec import apply_overrides

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(RAW))
    spec = load_spec(path, overrides=["config.epochs=5", "seeds=[0,1]", "methods.1.config.temperature=0.5"])
    jobs = {j.name: j for j in spec.jobs()}
    assert jobs["ce-digits"].fixed["epochs"] == 5 and spec.seeds == (0, 1)
    assert jobs["scl-digits"].fixed["temperature"] == 0.5
    assert spec.overrides == ("config.epochs=5", "seeds=[0,1]", "methods.1.config.temperature=0.5")
    assert RAW["config"]["epochs"] == 100  # the spec mapping itself is untouched
    with pytest.raises(ConfigError, match="config.epochs: 0 — must be >= 1"):
        load_spec(path, overrides=["config.epochs=0"])
    one = {k: v for k, v in RAW.items() if k != "methods"} | {"method": "ce"}
    with pytest.raises(ConfigError, match="methods is not in the spec, so methods.0 names no list item") as e:
        apply_overrides(one, ["methods.0.config.lr=0.1"])  # before: "give exactly one of method:"
    assert e.value.field == "--set" and "single method:" in str(e.value)
    for bad, why in (("epochs", "must be KEY=VALUE"), ("methods.7.config.lr=1", "no such list index")):
        with pytest.raises(ConfigError, match=why) as e:
            apply_overrides(RAW, [bad])
        assert e.value.field == "--set"


def test_a_set_of_a_shared_layer_must_reach_every_job(tmp_path) -> None:
    """``--set config.X`` where a method's own ``config:`` (or ``dataset_config``, or the
    ``--smoke`` values) sets X for some job would not change that job: refused, naming it."""
    import yaml

    path = tmp_path / "s.yaml"
    raw = {**RAW, "methods": [{"method": "ce"}, {"method": "scl", "config": {"epochs": 10}}]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        load_spec(path, overrides=["config.epochs=5"])
    assert e.value.field == "--set" and e.value.value == "config.epochs=5"
    assert "does not reach job scl-digits: methods[1].config.epochs sets its epochs after" in str(e.value)
    spec = load_spec(path, overrides=["config.epochs=5", "methods.1.config.epochs=5"])  # both: fine
    assert {j.fixed["epochs"] for j in spec.jobs()} == {5}
    with pytest.raises(ConfigError, match="does not reach job ce-digits: smoke.epochs sets its epochs"):
        load_spec(path, smoke=True, overrides=["config.epochs=5", "methods.1.config.epochs=5"])
    with pytest.raises(ConfigError, match="does not reach job ce-cifar10: dataset_config.cifar10.lr sets"):
        load_spec(path, overrides=["config.lr=0.5"])
    spec = load_spec(path, overrides=["config.batch_size=128", "dataset_config.cifar10.lr=0.5"])
    assert {j.fixed["batch_size"] for j in spec.jobs()} == {128}  # no later layer sets it
    assert {j.name: j.fixed["lr"] for j in spec.jobs()}["scl-cifar10"] == 0.5


def test_mode_follows_the_metric_and_may_not_contradict_it() -> None:
    assert parse_spec({**RAW, "metric": "val/loss"}).mode == "min"
    assert parse_spec({**RAW, "metric": "best/val/acc"}).mode == "max"
    assert parse_spec({**RAW, "metric": "train/supcon"}).mode == "min"  # a loss term
    assert parse_spec({**RAW, "metric": "train/mask", "mode": "max"}).mode == "max"  # no direction
    with pytest.raises(ConfigError) as e:
        parse_spec({**RAW, "metric": "best/val/acc", "mode": "min"})
    assert (e.value.field, e.value.value) == ("mode", "min")


def test_a_key_given_twice_in_a_spec_is_refused(tmp_path) -> None:
    """PyYAML keeps the last of two equal keys: a second ``config:`` silently replaced the
    first. YAML merge keys (``<<: *anchor``) may still be overridden."""
    p = tmp_path / "spec.yaml"
    p.write_text("name: t\nmethod: ce\nconfig: {epochs: 3}\ndataset: digits\nconfig: {lr: 0.1}\n")
    with pytest.raises(ConfigError) as e:
        load_spec(p)
    assert str(e.value) == (
        f"spec: {str(p)!r} — malformed YAML at line 5, column 1: key 'config' given twice in one "
        "mapping (lines 3 and 5); merge them"
    )
    p.write_text("name: t\nmethod: ce\nconfig: {epochs: 3, lr: 0.1, epochs: 4}\n")
    with pytest.raises(ConfigError, match="key 'epochs' given twice in one mapping"):
        load_spec(p)
    p.write_text(
        "name: t\nmethod: ce\nbase: &b {epochs: 3, lr: 0.1}\nconfig:\n  <<: *b\n  lr: 0.2\n".replace(
            "base", "x_base"
        )
    )
    with pytest.raises(ConfigError, match="x_base"):  # an unknown top-level key, not a repeat
        load_spec(p)
    from ftsweep.config.spec import read_yaml

    assert read_yaml(p.read_text())["config"] == {"epochs": 3, "lr": 0.2}
