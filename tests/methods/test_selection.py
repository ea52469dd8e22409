"""FineTuner's model-selection protocols (``select: best_val | last | median_last_k``), the
labeled validation size (``val_labels_per_class``), the shared ``feature_metrics`` and the
weight-decay option, on a ``ce`` trainable whose validation and test metrics are scripted."""

from __future__ import annotations

import numpy as np
import pytest

from ftsweep.config import ConfigError, TrainConfig
from ftsweep.methods.ce import CEMethod
from ftsweep.methods.coin import CoinMethod
from ftsweep.methods.core_tuning import CoreTuningMethod

VAL_ACC = [50.0, 80.0, 60.0, 70.0, 65.0, 55.0]
TEST_ACC = [40.0, 75.0, 58.0, 66.0, 61.0, 52.0]
CFG = {"pretrained": "none", "device": "cpu", "epochs": 6, "batch_size": 32, "max_train_batches": 1}


def scripted(**config):
    t = CEMethod({**CFG, **config})
    tested: list[int] = []

    def evaluate_split(split: str) -> dict[str, float]:
        if split == "test":
            tested.append(t.epoch)
            return {"test/acc": TEST_ACC[t.epoch - 1], "test/mpa": TEST_ACC[t.epoch - 1]}
        return {"val/acc": VAL_ACC[t.epoch], "val/mpa": VAL_ACC[t.epoch], "val/loss": 1.0}

    t.evaluate_split = evaluate_split
    return t, tested


def test_best_val_selects_the_best_validation_epoch_and_tests_only_on_improvement() -> None:
    t, tested = scripted()
    r = [t.step() for _ in range(6)][-1]
    assert r["best/epoch"] == 2 and r["best/val/acc"] == 80.0 and r["test/acc"] == 75.0
    assert tested == [1, 2]


def test_last_reports_the_final_epoch_and_tests_only_on_it() -> None:
    t, tested = scripted(select="last")
    results = [t.step() for _ in range(6)]
    assert all("test/acc" not in r for r in results[:5])
    r = results[-1]
    assert r["best/epoch"] == 6 and r["best/val/acc"] == 55.0 and r["test/acc"] == 52.0
    assert tested == [6] and r["select/counted"] == 1


def test_median_last_k_is_the_median_over_the_last_k_epochs() -> None:
    t, tested = scripted(select="median_last_k", select_k=3)
    r = [t.step() for _ in range(6)][-1]
    assert tested == [4, 5, 6]
    assert r["test/acc"] == float(np.median([66.0, 61.0, 52.0])) == 61.0
    assert r["best/val/acc"] == float(np.median([70.0, 65.0, 55.0])) and r["best/epoch"] == 6
    t2, _ = scripted(select="median_last_k", select_k=4)
    assert [t2.step() for _ in range(6)][-1]["test/acc"] == float(np.median([58.0, 66.0, 61.0, 52.0]))


def test_counted_epochs_survive_save_restore(tmp_path) -> None:
    t, _ = scripted(select="median_last_k", select_k=3)
    for _ in range(5):
        t.step()
    t.save_checkpoint(str(tmp_path))
    u, tested = scripted(select="median_last_k", select_k=3)
    u.load_checkpoint(str(tmp_path))
    assert u.step()["test/acc"] == 61.0 and tested == [6]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"select": "best"}, "select"),
        ({"select": "median_last_k", "select_k": 7, "epochs": 6}, "select_k"),
        ({"select": "last", "early_stop_patience": 3}, "early_stop_patience"),
        ({"val_labels_per_class": 0}, "val_labels_per_class"),
        ({"labels_per_class": 4, "val_labels_per_class": 5}, "val_labels_per_class"),
        ({"num_labels": 40, "val_labels_per_class": 5}, "val_labels_per_class"),
        ({"feature_metrics": ["dbi"]}, "feature_metrics"),
    ],
)
def test_bad_selection_config_names_the_field(changes, field) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(changes)
    assert err.value.field == field


def test_val_labels_per_class_keeps_a_balanced_subset_of_the_validation_split() -> None:
    full = CEMethod({**CFG, "labels_per_class": 4})
    t = CEMethod({**CFG, "labels_per_class": 4, "val_labels_per_class": 4})
    targets = np.asarray(t.data.loaded.train_targets)
    assert set(t.data.val.indices) <= set(full.data.val.indices)
    counts = np.bincount(targets[t.data.val.indices], minlength=10)
    assert (counts == 4).all() and len(t.data.val) == 40


def test_feature_metrics_log_s_dbw_for_any_method() -> None:
    t = CEMethod({**CFG, "epochs": 1, "feature_metrics": ["s_dbw"], "max_eval_batches": 1})
    r = t.step()
    assert np.isfinite(r["val/s_dbw"]) and r["val/s_dbw"] > 0
    assert "val/s_dbw" not in CEMethod({**CFG, "epochs": 1, "max_eval_batches": 1}).step()


@pytest.mark.parametrize("method_cls", [CoreTuningMethod, CoinMethod])
def test_core_tuning_and_coin_decay_biases_and_norms_by_default(method_cls: type) -> None:
    # both public codes give SGD every parameter with weight decay (Core-tuning.py,
    # COIN methods/base.py); the other methods exempt biases and norms
    assert method_cls.config_cls().weight_decay_norm_bias and not TrainConfig().weight_decay_norm_bias
    t = method_cls({**CFG, "weight_decay": 1e-4})
    assert all(g["weight_decay"] == 1e-4 for g in t.optimizer.param_groups)
    ce = CEMethod({**CFG, "weight_decay": 1e-4})
    assert {g["weight_decay"] for g in ce.optimizer.param_groups} == {0.0, 1e-4}
    n_ct = sum(p.numel() for g in t.optimizer.param_groups for p in g["params"])
    assert n_ct == sum(p.numel() for p in t.model.parameters() if p.requires_grad)
