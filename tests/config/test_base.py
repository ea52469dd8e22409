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
        ({"labels_per_class": 200}, "labels_per_class", "allowed: at most 129 per class"),
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
