"""Pre-Ray checks: dataset files, checkpoints that fit the backbone, contrastive positive pairs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision

from ftsweep.config import ConfigError
from ftsweep.config.checks import (
    CONTRASTIVE,
    check_checkpoint,
    check_dataset_files,
    check_fewshot_episodes,
    check_job,
    check_positive_pairs,
    positive_share,
)
from ftsweep.methods.coin import CoinConfig
from ftsweep.methods.schane import SchaneConfig
from ftsweep.methods.scl import SCLConfig

# ----------------------------------------------------------------------------- positive pairs


def _simulated_share(
    batch: int, classes: int, views: int, per_class: int | None, trials: int = 4000
) -> float:
    """Brute force: draw batches, count anchors (views) with another view of the same label."""
    rng = np.random.default_rng(0)
    pool = None if per_class is None else np.repeat(np.arange(classes), per_class)
    hits = total = 0
    for _ in range(trials):
        if pool is None:
            labels = rng.integers(0, classes, size=batch)
        else:
            labels = rng.choice(pool, size=min(batch, len(pool)), replace=False)
        view_labels = np.repeat(labels, views)  # views of one image carry its label
        for i in range(len(view_labels)):
            others = np.delete(view_labels, i)
            hits += bool((others == view_labels[i]).any())
            total += 1
    return hits / total


@pytest.mark.parametrize(
    ("batch", "classes", "views", "per_class"),
    [(8, 10, 1, None), (4, 3, 1, None), (16, 47, 1, None), (6, 10, 1, 2), (12, 5, 1, 3), (4, 10, 2, None)],
)
def test_positive_share_matches_a_simulation(batch, classes, views, per_class) -> None:
    expected = positive_share(batch, classes, views, per_class)
    assert abs(expected - _simulated_share(batch, classes, views, per_class)) < 0.02


def test_degenerate_shares() -> None:
    assert positive_share(1, 10) == 0.0 and positive_share(1, 10, views=2) == 1.0
    assert positive_share(256, 10, per_class=1) == 0.0  # one labelled image per class: never
    assert positive_share(64, 1) == 1.0


def test_the_table_matches_the_methods_views() -> None:
    from ftsweep.methods.coin import CoinMethod
    from ftsweep.methods.core_tuning import CoreTuningMethod
    from ftsweep.methods.schane import SchaneMethod
    from ftsweep.methods.scl import SclMethod

    def views(cls) -> int:
        return 1 if isinstance(cls.train_views, str) else len(cls.train_views)

    got = {"scl": SclMethod, "coin": CoinMethod, "core_tuning": CoreTuningMethod, "schane": SchaneMethod}
    assert {m: views(c) for m, c in got.items()} == {m: r.views for m, r in CONTRASTIVE.items()}


def test_scl_with_batch_size_1_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        check_job(
            SCLConfig, {"batch_size": 1, "pretrained": "none"}, {"batch_size": "methods[0].config.batch_size"}
        )
    assert err.value.field == "methods[0].config.batch_size" and err.value.value == 1
    assert "positive" in err.value.allowed and "0%" in err.value.allowed and ">= 8" in err.value.allowed
    check_job(SCLConfig, {"batch_size": 8, "pretrained": "none"}, {})  # 52% of anchors
    check_job(SCLConfig, {"batch_size": 1, "lambda_": 0.0, "pretrained": "none"}, {})  # no contrastive term


def test_a_one_image_per_class_budget_is_refused_and_two_views_pass() -> None:
    with pytest.raises(ConfigError, match="1 labelled images per class .* 0% of the anchors"):
        check_positive_pairs("coin", CoinConfig(labels_per_class=1, batch_size=64).to_dict(), 10)
    check_positive_pairs("schane", SchaneConfig(batch_size=2).to_dict(), 10)  # the other view is a positive


# ----------------------------------------------------------------------------- dataset files


def test_missing_dataset_files_name_the_path_and_the_download_hint(tmp_path) -> None:
    with pytest.raises(ConfigError) as err:
        check_dataset_files("cifar10", str(tmp_path), False, {"dataset": "spec.datasets"})
    assert err.value.field == "datasets" and str(tmp_path / "cifar-10-batches-py") in err.value.allowed
    assert "download: true" in err.value.allowed
    check_dataset_files("cifar10", str(tmp_path), True)  # torchvision will fetch it
    with pytest.raises(ConfigError, match="cannot be downloaded automatically"):
        check_dataset_files("cars", str(tmp_path), True)
    (tmp_path / "cub200" / "train").mkdir(parents=True)
    with pytest.raises(ConfigError, match="cub200/test") as err:
        check_dataset_files("cub200", str(tmp_path), False)
    assert "cub200/train" not in err.value.allowed
    (tmp_path / "cub200" / "test").mkdir()
    check_dataset_files("cub200", str(tmp_path), False)
    check_dataset_files("digits", str(tmp_path), False)  # ships with scikit-learn


# ----------------------------------------------------------------------------- checkpoints


def test_random_bytes_are_not_a_checkpoint(tmp_path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ConfigError) as err:
        check_checkpoint("torchvision.resnet18", str(path), source={"pretrained": "spec.pretrained"})
    assert err.value.field == "pretrained" and str(path) in str(err.value)


def test_a_checkpoint_of_another_architecture_names_keys(tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    check_checkpoint("torchvision.resnet18", str(path))
    with pytest.raises(ConfigError) as err:
        check_checkpoint("torchvision.resnet50", str(path))
    msg = err.value.allowed
    assert "missing keys" in msg and "layer1.0.conv3.weight" in msg and "shape mismatches" in msg
    with pytest.raises(ConfigError) as err:
        check_checkpoint("vit_base_patch16_224", str(path))
    assert "unexpected keys" in err.value.allowed and "cls_token" in err.value.allowed


def test_missing_files_and_names(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(
        ConfigError, match="no such checkpoint file; allowed: an existing file, auto, none, moco_v2_800ep"
    ):
        check_checkpoint("torchvision.resnet50", str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError) as err:
        check_job(
            SCLConfig,
            {"backbone": "torchvision.resnet50", "pretrained": "moco_v2_800ep"},
            {"pretrained": "spec.pretrained"},
            download_weights=False,
        )
    assert err.value.field == "pretrained" and "moco_v2_800ep_pretrain.pth.tar" in err.value.allowed
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in err.value.allowed


def test_fewshot_episodes_of_a_dataset_not_at_hand_are_bounded_by_its_test_size() -> None:
    def cfg(shots: int, split: str = "test") -> SimpleNamespace:
        fields = {"fewshot_ways": (10,), "fewshot_shots": (1, shots), "fewshot_query": 15}
        return SimpleNamespace(dataset="cifar10", data_root="data", fewshot_split=split, **fields)

    # CIFAR-10's 10000 test images: 10 classes of 985 + 15 fit, of 986 + 15 at most 9 can
    check_fewshot_episodes(cfg(985), {})
    with pytest.raises(ConfigError) as e:
        check_fewshot_episodes(cfg(986), {"fewshot_shots": "config.fewshot_shots"})
    assert (e.value.field, e.value.value) == ("config.fewshot_shots", 986)
    assert "need 10 classes with 1001 test images each; cifar10's test split has at most 9" in e.value.allowed
    # episodes from novel classes are not drawn from the test split
    check_fewshot_episodes(cfg(986, split="novel"), {})
