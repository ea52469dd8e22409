"""TrainConfig: strict keys, types and ranges, one error naming field, value and rule."""

from __future__ import annotations

import dataclasses

import pytest

from ftsweep.config import ConfigError, TrainConfig


def test_defaults_and_coercion() -> None:
    cfg = TrainConfig.from_dict({"lr": 1, "milestones": [5, 8], "epochs": 10})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.milestones == (5, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "field", "allowed"),
    [
        ({"lr": 0}, "lr", "must be > 0"),
        ({"lr": -1e-3}, "lr", "must be > 0"),
        ({"weight_decay": -1}, "weight_decay", "must be >= 0"),
        ({"val_fraction": 1.0}, "val_fraction", "must be in (0, 1)"),
        ({"val_fraction": 0.0}, "val_fraction", "must be in (0, 1)"),
        ({"momentum": 1.0}, "momentum", "must be in [0, 1)"),
        ({"epochs": 0}, "epochs", "must be >= 1"),
        ({"epochs": 2.5}, "epochs", "must be an integer"),
        ({"optimizer": "rmsprop"}, "optimizer", "must be one of sgd, adam, adamw, lars"),
        ({"dataset": "mnist"}, "dataset", "must be one of"),
        # an estimate from num_train where the labels are not at hand (digits' split is exact,
        # checked by ftsweep.config.checks.check_exact_split)
        (
            {"dataset": "cifar10", "labels_per_class": 5000},
            "labels_per_class",
            "allowed: at most 4500 per class",
        ),
        ({"num_labels": 15}, "num_labels", "multiple of the 10 classes"),
        ({"lrr": 0.1}, "lrr", "did you mean 'lr'?"),
        ({"device": "tpu"}, "device", "must be auto, cpu, cuda, cuda:N or mps"),
        ({"nesterov": "yes"}, "nesterov", "must be true or false"),
        ({"image_size": 4}, "image_size", "must be >= 8"),
    ],
)
def test_bad_values_name_field_value_and_rule(values: dict, field: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values)
    err = info.value
    assert err.field == field
    assert allowed in str(err)
    assert str(err).startswith(f"{field}: {values[field]!r}") or str(err).startswith(f"{field}: ")


def test_shared_fields_are_written_once_with_each_configs_defaults_and_checks() -> None:
    from ftsweep.config.base import DataConfig, LoopConfig
    from ftsweep.pretrain import TargetPretrainConfig

    shared = set(DataConfig.field_names()) | set(LoopConfig.field_names())
    for cls in (TrainConfig, TargetPretrainConfig):
        assert issubclass(cls, DataConfig) and issubclass(cls, LoopConfig)
        assert shared <= set(cls.field_names())
    assert "download" in TrainConfig.field_names() and "download" not in TargetPretrainConfig.field_names()
    train, stage1 = TrainConfig(), TargetPretrainConfig()
    differ = {"pretrained", "epochs", "batch_size", "optimizer", "lr", "weight_decay"}
    assert {k for k in shared if getattr(train, k) != getattr(stage1, k)} == differ
    assert (train.pretrained, train.epochs, train.batch_size, train.optimizer) == ("auto", 30, 64, "sgd")
    assert (stage1.pretrained, stage1.epochs, stage1.batch_size, stage1.optimizer) == (
        "none",
        300,
        256,
        "lars",
    )
    assert (train.lr, train.weight_decay, stage1.lr, stage1.weight_decay) == (0.01, 5e-4, 0.3, 1.5e-6)
    # the class-level rules keep each config's own bounds and messages
    for cls, bad, msg in (
        (TrainConfig, 0, "must be >= 1"),
        (TargetPretrainConfig, 1, "must be >= 2"),
    ):
        with pytest.raises(ConfigError, match=msg):
            cls.from_dict({"batch_size": bad})
    with pytest.raises(ConfigError, match="must be one of sgd, adam, adamw, lars"):
        TrainConfig.from_dict({"optimizer": "rmsprop"})
    with pytest.raises(ConfigError, match="must be one of lars, sgd"):
        TargetPretrainConfig.from_dict({"optimizer": "adam"})
    for cls in (TrainConfig, TargetPretrainConfig):
        with pytest.raises(ConfigError, match="must be auto, cpu, cuda, cuda:N or mps"):
            cls.from_dict({"device": "tpu"})
        with pytest.raises(ConfigError, match="give labels_per_class or num_labels, not both"):
            cls.from_dict({"labels_per_class": 1, "num_labels": 10})


def test_config_error_pickles_as_itself() -> None:
    """Raised in a Ray task, the error crosses to the driver by pickle: it must come back whole
    (it came back as an unpicklable exception, a traceback instead of its line)."""
    import pickle

    from ftsweep.config.errors import ConfigError

    e = pickle.loads(pickle.dumps(ConfigError("config.feature_layer", "projection", "moco_v2 only")))
    assert type(e) is ConfigError and (e.field, e.value, e.allowed) == (
        "config.feature_layer",
        "projection",
        "moco_v2 only",
    )
    assert str(e) == "config.feature_layer: 'projection' — moco_v2 only"


def test_milestones_bind_only_the_step_schedule() -> None:
    """UOT's default milestones (60, 80) refused a 1-epoch cosine run ("milestones: 60 — must
    be in [1, 1]", a field the user never set, of a schedule not used)."""
    from ftsweep.methods.uot_selection import UotSelectionConfig

    assert UotSelectionConfig.from_dict({"epochs": 1, "schedule": "cosine"}).milestones == (60, 80)
    with pytest.raises(ConfigError) as e:
        UotSelectionConfig.from_dict({"epochs": 70})
    assert str(e.value) == (
        "milestones: [60, 80] — must be epochs in [1, 70] (epochs: 70); give milestones for this "
        "length (step schedule)"
    )
    assert TrainConfig.from_dict({"schedule": "step", "milestones": [1, 70], "epochs": 70}).milestones == (
        1,
        70,
    )
    with pytest.raises(ConfigError, match=r"milestones: \[0\] — must be epochs in \[1, 70\]"):
        TrainConfig.from_dict({"schedule": "step", "milestones": [0], "epochs": 70})
