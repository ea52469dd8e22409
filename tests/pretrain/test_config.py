"""Stage-1 config: range checks naming the field, scaled learning rate, projector defaults."""

from __future__ import annotations

import pytest

from ftsweep.config import ConfigError
from ftsweep.pretrain.config import TargetPretrainConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tau_base", 1.5),
        ("tau_base", -0.1),
        ("l2_init", -1e-3),
        ("objective", "simclr"),
        ("optimizer", "adam"),
        ("moco_temperature", 0.0),
        ("moco_momentum", 1.2),
        ("byol_reduction", "max"),
        ("lr", 0.0),
        ("device", "gpu"),
    ],
)
def test_bad_config_raises_config_error_naming_field(field, value):
    with pytest.raises(ConfigError) as err:
        TargetPretrainConfig.from_dict({field: value})
    assert field in str(err.value) and str(value) in str(err.value)


def test_warmup_must_be_shorter_than_training():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        TargetPretrainConfig(epochs=5, warmup_epochs=5)


def test_unknown_field_is_rejected():
    with pytest.raises(ConfigError, match="did you mean 'tau_base'"):
        TargetPretrainConfig.from_dict({"tau_bas": 0.99})


def test_lr_is_scaled_by_batch_over_256_and_projector_defaults_follow_objective():
    assert TargetPretrainConfig().scaled_lr == pytest.approx(0.3)
    assert TargetPretrainConfig(batch_size=512, lr=0.3).scaled_lr == pytest.approx(0.6)
    assert TargetPretrainConfig(objective="byol").projector_dims == (256, 4096)
    assert TargetPretrainConfig(objective="moco_v2").projector_dims == (128, 2048)
    assert TargetPretrainConfig(objective="moco_v2", proj_dim=64).projector_dims == (64, 2048)
