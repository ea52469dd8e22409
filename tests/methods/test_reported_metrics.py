"""``reported_metrics(cfg)``: the val/, best/ and train/ metrics every epoch of a configuration
reports, which ``check_jobs`` holds the spec's ``metric`` and ``stop`` keys to before Ray starts;
``logged_metrics(cfg)``: every metric some epoch reports (the run's metric columns), which it
holds ``table.metric`` and ``table.select_by`` to. Each case runs a real method for a few epochs
and compares the declarations with the keys the epochs actually share / log (both ways: nothing
declared that the epochs lack, nothing they report left out)."""

from __future__ import annotations

from typing import Any

import pytest

from ftsweep.tracking import result_metrics
from ftsweep.trial import method_class

PREFIXES = ("val/", "best/", "train/")
TINY = {"pretrained": "none", "device": "cpu", "batch_size": 16, "max_train_batches": 1}
SEMI = {**TINY, "labels_per_class": 4, "max_eval_batches": 1, "iters_per_epoch": 1}
STAGE1 = {
    "device": "cpu",
    "epochs": 2,
    "batch_size": 32,
    "proj_dim": 8,
    "proj_hidden": 16,
    "pred_hidden": 16,
    "moco_queue": 64,
    "max_train_batches": 1,
    "cluster_n_init": 1,
}

CASES = [
    ("ce", {}),
    ("scl", {}),
    ("coin", {"alpha": 0.5}),  # stage 1 (SupCon only) then stage 2 (ce joins)
    ("coin", {"alpha": 0.0}),
    ("core_tuning", {}),
    ("core_tuning", {"eta": 0.0}),
    ("schane", {"objective": "schane"}),
    ("schane", {"objective": "ce"}),
    ("schane", {"objective": "ce_supcon"}),
    ("schane", {"objective": "ce_simclr"}),
    ("supervised", {"labels_per_class": 4, "iters_per_epoch": 1}),
    ("fixmatch", SEMI),
    ("uda", SEMI),
    ("mean_teacher", SEMI),
    ("uot_selection", {"k": 2, "milestones": (1,), "selection": "none"}),
    ("uot_selection", {"k": 2, "milestones": (1,)}),
    ("uot_selection", {"k": 2, "milestones": (1,), "source_labels": False, "num_clusters": 20}),
]


def _run(method: str, config: dict[str, Any], epochs: int) -> tuple[set[str], set[str], Any]:
    """The val/, best/ and train/ keys every epoch shares, every key some epoch logs to MLflow
    (as the tracking logger keeps them), and the resolved config."""
    m = method_class(method)(config)
    shared, logged = None, set()
    for _ in range(epochs):
        result = m.step()
        keys = {k for k in result if k.startswith(PREFIXES)}
        shared = keys if shared is None else shared & keys
        logged |= set(result_metrics(result))
    assert shared is not None
    return shared, logged, m.cfg


@pytest.mark.parametrize(("method", "config"), CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_declared_metrics_are_what_every_epoch_reports(method: str, config: dict[str, Any]) -> None:
    keys, _, cfg = _run(method, {**TINY, "max_eval_batches": 1, "epochs": 2, **config}, epochs=2)
    assert method_class(method).reported_metrics(cfg) == keys


#: configurations whose runs log more than the cases above: other selection protocols, early
#: stopping, feature metrics, few-shot episodes
LOGGED_CASES = [
    *CASES,
    ("ce", {"select": "last"}),
    ("ce", {"select": "median_last_k", "select_k": 2}),
    ("ce", {"early_stop_patience": 5}),
    ("scl", {"feature_metrics": ("s_dbw",)}),
    ("coin", {"alpha": 0.5, "feature_metrics": ("s_dbw",)}),
    (
        "schane",
        {"fewshot_ways": (2, 3), "fewshot_shots": (1,), "fewshot_query": 2, "fewshot_episodes": 2},
    ),
]


@pytest.mark.parametrize(
    ("method", "config"), LOGGED_CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(LOGGED_CASES)]
)
def test_declared_run_metrics_are_what_the_epochs_log(method: str, config: dict[str, Any]) -> None:
    _, logged, cfg = _run(method, {**TINY, "max_eval_batches": 1, "epochs": 2, **config}, epochs=2)
    assert method_class(method).logged_metrics(cfg) == logged


@pytest.mark.parametrize("l2_init", [0.0, 0.01])
def test_stage1_declares_its_train_metrics(l2_init: float) -> None:
    keys, logged, cfg = _run("target_pretrain", {**STAGE1, "l2_init": l2_init}, epochs=2)
    assert method_class("target_pretrain").reported_metrics(cfg) == keys
    assert method_class("target_pretrain").logged_metrics(cfg) == logged
    assert ("train/l2_init" in keys) == (l2_init > 0)


def test_coin_reports_ce_in_every_epoch_only_without_stage_1() -> None:
    from ftsweep.methods.coin import CoinConfig

    coin = method_class("coin")
    assert "train/ce" not in coin.reported_metrics(CoinConfig(alpha=0.5))
    assert "train/ce" in coin.reported_metrics(CoinConfig(alpha=0.0))


def test_every_logged_term_has_a_known_direction() -> None:
    """``stop:`` and the default ``mode`` read a ``train/<term>``'s direction from its name: each
    term a method logs is a loss (falls as it improves) or listed as having no direction."""
    from ftsweep.config.spec import LOSS_TERMS, NOT_LOSS_TERMS, metric_direction

    terms = set()
    for method, config in LOGGED_CASES:
        cls = method_class(method)
        cfg = cls.config_cls.from_dict({**TINY, **config})
        terms |= {k.removeprefix("train/") for k in cls.logged_metrics(cfg) if k.startswith("train/")}
    for l2_init in (0.0, 0.01):
        cls = method_class("target_pretrain")
        cfg = cls.config_cls.from_dict({**STAGE1, "l2_init": l2_init})
        terms |= {k.removeprefix("train/") for k in cls.logged_metrics(cfg) if k.startswith("train/")}
    terms -= {"loss", "lr"}
    assert terms == set(LOSS_TERMS) | set(NOT_LOSS_TERMS)
    assert all(metric_direction(f"train/{t}") == "min" for t in LOSS_TERMS)
    assert all(metric_direction(f"train/{t}") is None for t in NOT_LOSS_TERMS)
