"""uot_selection features from a MoCo checkpoint's projection head (``feature_layer``).

The checkpoint is a small-CNN MoCo v2 in the official key layout (``state_dict`` of the
DistributedDataParallel model: ``module.encoder_q.*`` with the ``fc.0`` / ``fc.2`` MLP head,
``module.encoder_k.*``, ``module.queue``, ``module.queue_ptr``). The cached projection features
are compared with the head written out by hand in float64 over independently extracted
penultimate features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

import ftsweep.selection.pipeline as dr
from ftsweep.backbones import create_backbone, load_backbone_weights
from ftsweep.config import ConfigError
from ftsweep.data import ViewDataset, build_view, get_dataset_info, load_dataset_cached
from ftsweep.engine import extract_features
from ftsweep.methods.uot_selection import UotSelectionConfig, UotSelectionMethod
from ftsweep.registry import methods
from ftsweep.selection import cache_path, cached_features

SMOKE = methods()["uot_selection"].smoke


def make(config: dict) -> UotSelectionMethod:
    """The method with a trial directory beside the config's cache (for ``selection.json``)."""
    return UotSelectionMethod(config, logdir=str(Path(config["cache_dir"]).parent / "trial"))


WIDTH, OUT = 128, 128  # small CNN features; MoCo v2's embedding dimension


def _config(tmp_path: Path, **extra: object) -> dict:
    return {
        **SMOKE,
        "device": "cpu",
        "epochs": 1,
        "batch_size": 16,
        "max_train_batches": 1,
        "max_eval_batches": 1,
        "cache_dir": str(tmp_path / "cache"),
        **extra,
    }


def _head(in_dim: int, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "fc.0.weight": torch.randn(in_dim, in_dim, generator=g) / in_dim**0.5,
        "fc.0.bias": torch.randn(in_dim, generator=g),
        "fc.2.weight": torch.randn(OUT, in_dim, generator=g) / in_dim**0.5,
        "fc.2.bias": torch.randn(OUT, generator=g),
    }


def _moco_checkpoint(path: Path, head: dict[str, Tensor]) -> Path:
    g = torch.Generator().manual_seed(0)
    body = {}
    for k, v in create_backbone("small_cnn").state_dict().items():
        if k.endswith("running_var"):
            body[k] = torch.rand(v.shape, generator=g) + 0.5
        elif v.is_floating_point():
            body[k] = torch.randn(v.shape, generator=g) * 0.3
        else:
            body[k] = v
    q = {**body, **head}
    state = {
        **{f"module.encoder_q.{k}": v for k, v in q.items()},
        **{f"module.encoder_k.{k}": -v if v.is_floating_point() else v for k, v in q.items()},
        "module.queue": torch.randn(OUT, 64, generator=g),
        "module.queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    torch.save({"epoch": 800, "arch": "small_cnn", "state_dict": state, "optimizer": {"state": {}}}, path)
    return path


def _penultimate(path: Path, dataset: str) -> np.ndarray:
    """Pooled features of a freshly loaded backbone over the train part, in index order."""
    backbone = create_backbone("small_cnn")
    load_backbone_weights(backbone, path, format="moco_v2")
    loaded = load_dataset_cached(dataset, "data", False)
    ds = ViewDataset(
        loaded.train, np.arange(len(loaded.train)), build_view(get_dataset_info(dataset), "eval")
    )
    return extract_features(backbone, dr._Pairs(ds), batch_size=500)[0]


def _cached(t: UotSelectionMethod, dataset: str) -> np.ndarray:
    def fail() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise AssertionError(f"features of {dataset} were not cached")

    return cached_features(t.cfg.cache_dir, t._feature_key(dataset), fail)[1]


def test_moco_checkpoint_selects_on_its_projection_output(tmp_path: Path) -> None:
    head = _head(WIDTH, seed=1)
    path = _moco_checkpoint(tmp_path / "moco_v2.pth.tar", head)
    t = make(_config(tmp_path, pretrained=str(path), selection="uot"))  # format, layer: auto
    assert t.feature_layer == "projection"
    pen = torch.from_numpy(_penultimate(path, "digits_target")).double()
    hidden = torch.clamp(pen @ head["fc.0.weight"].double().T + head["fc.0.bias"].double(), min=0)
    expected = hidden @ head["fc.2.weight"].double().T + head["fc.2.bias"].double()
    got = _cached(t, "digits_target")
    assert got.shape == (200, OUT)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4)
    assert not np.allclose(got, pen.numpy(), atol=1e-2)  # not the penultimate features
    assert _cached(t, "digits_source").shape == (1020, OUT)

    p = make(_config(tmp_path, pretrained=str(path), selection="uot", feature_layer="penultimate"))
    assert p.feature_layer == "penultimate"
    key_p, key_t = p._feature_key("digits_target"), t._feature_key("digits_target")
    assert {k for k in key_t if key_t[k] != key_p[k]} == {"layer"}
    cache = Path(t.cfg.cache_dir)
    assert cache_path(cache, key_p) != cache_path(cache, key_t)
    assert len(list(cache.glob("features-*.parquet"))) == 4  # 2 datasets × 2 layers
    np.testing.assert_allclose(_cached(p, "digits_target"), pen.numpy(), rtol=1e-5, atol=1e-5)

    explicit = make(
        _config(tmp_path, pretrained=str(path), selection="greedy_ot", feature_layer="projection")
    )
    # explicit projection shares the auto-resolved cache entry
    assert explicit._feature_key("digits_target") == t._feature_key("digits_target")
    assert len(list(Path(t.cfg.cache_dir).glob("features-*.parquet"))) == 4


def test_projection_without_a_head_is_a_config_error(tmp_path: Path) -> None:
    path = _moco_checkpoint(tmp_path / "nohead.pth.tar", {})
    for layer in ("projection", "auto"):
        with pytest.raises(ConfigError, match=rf"feature_layer: '{layer}' .*has no projection head"):
            make(_config(tmp_path, pretrained=str(path), feature_layer=layer))
    make(_config(tmp_path, pretrained=str(path), feature_layer="penultimate"))
    wide = _moco_checkpoint(tmp_path / "wide.pth.tar", _head(512, seed=2))
    with pytest.raises(
        ConfigError, match="feature_layer: 'projection' .*takes 512 features but small_cnn gives 128"
    ):
        make(_config(tmp_path, pretrained=str(wide), feature_layer="projection"))


def test_non_moco_checkpoint_uses_penultimate_under_auto(tmp_path: Path) -> None:
    path = tmp_path / "ftsweep.pt"
    torch.save({f"backbone.{k}": v for k, v in create_backbone("small_cnn").state_dict().items()}, path)
    t = make(_config(tmp_path, pretrained=str(path), selection="greedy_ot"))
    assert t.feature_layer == "penultimate"
    assert _cached(t, "digits_target").shape == (200, WIDTH)


def test_reused_actor_resolves_the_layer_of_its_new_checkpoint(tmp_path: Path) -> None:
    """Tune's actor reuse calls reset_config → setup on the same object: auto is re-resolved."""
    ftsweep_ckpt = tmp_path / "ftsweep.pt"
    torch.save(
        {f"backbone.{k}": v for k, v in create_backbone("small_cnn").state_dict().items()}, ftsweep_ckpt
    )
    moco = _moco_checkpoint(tmp_path / "moco.pth.tar", _head(WIDTH, seed=3))
    t = make(_config(tmp_path, pretrained=str(ftsweep_ckpt), selection="uot"))
    assert t.feature_layer == "penultimate"
    assert t.reset_config(_config(tmp_path, pretrained=str(moco), selection="uot"))
    assert t.feature_layer == "projection"
    assert t._feature_key("digits_target")["layer"] == "projection"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"feature_layer": "fc"}, "feature_layer: 'fc'.*auto, penultimate, projection"),
        ({"feature_layer": "projection", "pretrained": "none"}, "feature_layer: 'projection' .*not 'none'"),
        ({"feature_layer": "projection", "pretrained": "auto"}, "feature_layer: 'projection' .*not 'auto'"),
        (
            {"feature_layer": "projection", "pretrained": "/x.pt", "checkpoint_format": "torchvision"},
            "feature_layer: 'projection' .*checkpoint_format auto or moco_v2.*not 'torchvision'",
        ),
    ],
)
def test_feature_layer_config_errors(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UotSelectionConfig.from_dict({"milestones": [], **extra})


def test_named_moco_weights_select_on_their_cached_file(tmp_path: Path, monkeypatch) -> None:
    """``pretrained: <registry name>`` (the papers' specs: moco_v2_800ep, resnet18_imagenet1k_v1)
    is resolved to its verified cache file for the selection features too: the same features,
    and the same cache entry, as the file given by its path and format (it was read as a path
    called "test_moco_cnn": FileNotFoundError in every trial)."""
    import hashlib
    from dataclasses import replace

    from ftsweep.backbones import weights as W

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "moco_cnn.pth.tar"
    cached.parent.mkdir(parents=True)
    _moco_checkpoint(cached, _head(WIDTH, seed=4))
    md5 = hashlib.md5(cached.read_bytes()).hexdigest()
    entry = replace(
        W.WEIGHTS["moco_v2_800ep"],
        name="test_moco_cnn",
        url="https://example.org/moco_cnn.pth.tar",
        backbone="small_cnn",
        hash_prefix=md5[:10],
    )
    monkeypatch.setitem(W.WEIGHTS, "test_moco_cnn", entry)
    named = make(_config(tmp_path, pretrained="test_moco_cnn", selection="uot"))
    assert named.feature_layer == "projection"
    by_path = make(_config(tmp_path, pretrained=str(cached), checkpoint_format="moco_v2", selection="uot"))
    assert named._feature_key("digits_target") == by_path._feature_key("digits_target")
    np.testing.assert_array_equal(_cached(named, "digits_target"), _cached(by_path, "digits_target"))
