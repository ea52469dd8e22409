"""The ``target_pretrain`` method (ftsweep.methods.target_pretrain): reported metrics, clustering
accuracy before/after (Table 10), save → restore → continue, and the search spaces."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from ray import tune

import search_spaces.target_pretrain as spaces
from ftsweep.backbones import create_backbone, load_backbone_weights
from ftsweep.config import ConfigError
from ftsweep.data import build_view, get_dataset_info, load_dataset_cached
from ftsweep.engine import extract_features, make_loader
from ftsweep.methods.target_pretrain import TargetPretrainMethod
from ftsweep.metrics import clustering_accuracy
from ftsweep.pretrain import TargetPretrainConfig, target_pool
from ftsweep.registry import methods

BASE = {
    "epochs": 3,
    "batch_size": 32,
    "proj_dim": 8,
    "proj_hidden": 16,
    "pred_hidden": 16,
    "moco_queue": 64,
    "max_train_batches": 2,
    "device": "cpu",
    "cluster_n_init": 1,
}


def test_registered_with_smoke_config():
    record = methods()["target_pretrain"]
    assert record.config_cls is TargetPretrainConfig
    assert record.trainable.method_cls is TargetPretrainMethod
    TargetPretrainConfig.from_dict({**record.smoke, "epochs": 2, "max_train_batches": 2})


def test_bad_config_fails_at_setup():
    with pytest.raises(ConfigError, match="tau_base"):
        TargetPretrainMethod({**BASE, "tau_base": 2.0})


def _kmeans_acc_independent(backbone, ds, k: int, seed: int) -> float:
    """Features → sklearn KMeans (n_init 1) → best mapping by brute force over the contingency."""
    from sklearn.cluster import KMeans

    feats, labels = extract_features(backbone.eval(), make_loader(ds, batch_size=512, shuffle=False), "cpu")
    pred = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(feats)
    return 100.0 * clustering_accuracy(labels, pred)


def test_reports_loss_and_clustering_before_and_after(tmp_path):
    cfg = {**BASE, "eval_every": 2}
    t = TargetPretrainMethod(cfg)
    results = [t.step() for _ in range(3)]
    for r in results:
        assert np.isfinite(r["train/loss"]) and r["train/loss"] > 0
        for key in (
            "cluster/train_acc",
            "cluster/test_acc",
            "cluster/train_acc_before",
            "cluster/test_acc_before",
        ):
            assert 0.0 <= r[key] <= 100.0, key
        assert r["cluster/train_acc_before"] == results[0]["cluster/train_acc_before"]
    assert results[-1]["done"] and not results[0].get("done") and not results[1].get("done")
    # epoch 1: no evaluation yet (the "before" values are repeated); epoch 2 evaluated
    assert results[0]["cluster/train_acc"] == results[0]["cluster/train_acc_before"]

    # the "before" value is k-means on the features of the initial weights (seed 0, random init)
    info = get_dataset_info("digits")
    loaded = load_dataset_cached("digits", "data", False)
    from ftsweep.data import ViewDataset

    pool_ds = ViewDataset(loaded.train, target_pool(TargetPretrainConfig(**BASE)), build_view(info, "eval"))
    torch.manual_seed(0)
    backbone = create_backbone("small_cnn")
    before = _kmeans_acc_independent(backbone, pool_ds, info.num_classes, seed=0)
    assert results[0]["cluster/train_acc_before"] == pytest.approx(before)

    # the final value is the same protocol on the trained backbone, as saved for stage 2
    t.save_checkpoint(str(tmp_path))
    trained = create_backbone("small_cnn")
    load_backbone_weights(trained, tmp_path / "backbone.pt", format="ftsweep")
    after = _kmeans_acc_independent(trained, pool_ds, info.num_classes, seed=0)
    assert results[-1]["cluster/train_acc"] == pytest.approx(after)
    test_ds = ViewDataset(loaded.test, np.arange(len(loaded.test)), build_view(info, "eval"))
    assert results[-1]["cluster/test_acc"] == pytest.approx(
        _kmeans_acc_independent(trained, test_ds, info.num_classes, seed=0)
    )


@pytest.mark.parametrize("objective", ["byol", "moco_v2"])
def test_save_restore_continues_identically(tmp_path, objective):
    cfg = {**BASE, "objective": objective, "seed": 2}
    a = TargetPretrainMethod(cfg)
    a.step()
    a.save_checkpoint(str(tmp_path))
    ra = a.step()
    b = TargetPretrainMethod(cfg)
    b.load_checkpoint(str(tmp_path))
    assert b.epoch == 1
    rb = b.step()
    for key in ("train/loss", "train/ssl", "train/l2_init", "sched/momentum", "sched/lr", "epoch"):
        assert ra[key] == rb[key], key
    for (name, pa), pb in zip(
        a.trainer.model.state_dict().items(), b.trainer.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    for (name, pa), pb in zip(
        a.trainer.target.state_dict().items(), b.trainer.target.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    if objective == "moco_v2":
        assert torch.equal(a.trainer.queue.keys, b.trainer.queue.keys)
        assert a.trainer.queue.ptr == b.trainer.queue.ptr


# ---- search spaces ----------------------------------------------------------------------------------
def _values(spec):
    if isinstance(spec, dict) and "grid_search" in spec:
        return spec["grid_search"]
    if isinstance(spec, tune.search.sample.Domain):
        return [spec.sample() for _ in range(20)]
    return [spec]


@pytest.mark.parametrize(
    "fn", [f for n, f in inspect.getmembers(spaces, inspect.isfunction) if n in spaces.__all__]
)
def test_search_space_keys_are_fields_and_values_in_bounds(fn):
    space = fn()
    assert space
    for key, spec in space.items():
        assert key in TargetPretrainConfig.field_names(), key
        for value in _values(spec):
            TargetPretrainConfig.from_dict({key: value})
