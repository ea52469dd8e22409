"""Every registered Trainable: two epochs, save → restore into a fresh instance → the next
epoch continues with the same iteration count and identical metrics (Ray's
``validate_save_restore`` idea, stricter: metric equality)."""

from __future__ import annotations

import math

import pytest

from ftsweep.registry import Registry, methods

TIME_KEYS = (
    "time/",
    "timestamp",
    "time_",
    "pid",
    "hostname",
    "node_ip",
    "date",
    "iterations_since_restore",
    "checkpoint_dir_name",
    "should_checkpoint",
)


def _config(name: str) -> dict:
    record = methods()[name]
    return {
        "pretrained": "none",
        "epochs": 3,
        "max_train_batches": 2,
        "max_eval_batches": 1,
        "batch_size": 16,
        "eval_batch_size": 64,
        "device": "cpu",
        **record.smoke,
        "seed": 3,
    }


def _metrics(result: dict) -> dict:
    return {
        k: v for k, v in result.items() if isinstance(v, float | int) and not any(t in k for t in TIME_KEYS)
    }


@pytest.mark.parametrize("name", sorted(methods()))
def test_save_restore_continues_identically(name: str, tmp_path) -> None:
    cls = methods()[name].trainable
    config = _config(name)
    config = {k: v for k, v in config.items() if k in cls.config_cls.field_names()}
    a = cls(config=config)
    a.train()
    a.train()
    ckpt = a.save(str(tmp_path / "ckpt"))
    expected = a.train()

    b = cls(config=config)
    b.restore(ckpt)
    got = b.train()
    assert got["training_iteration"] == expected["training_iteration"] == 3
    em, gm = _metrics(expected), _metrics(got)
    assert em.keys() == gm.keys()
    for k in em:
        if isinstance(em[k], float) and math.isnan(em[k]):
            assert math.isnan(gm[k]), k
        else:
            assert gm[k] == pytest.approx(em[k], rel=1e-5, abs=1e-6), k
    a.stop()
    b.stop()


def test_duplicate_registration_raises() -> None:
    registry = Registry()
    registry.register(methods()["ce"])
    with pytest.raises(KeyError, match="already registered"):
        registry.register(methods()["ce"])


@pytest.mark.parametrize("name", sorted(methods()))
def test_config_class_is_frozen_and_strict(name: str) -> None:
    cls = methods()[name].config_cls
    from ftsweep.config import ConfigError

    with pytest.raises(ConfigError, match="not a field"):
        cls.from_dict({"definitely_not_a_field": 1})
