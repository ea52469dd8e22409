"""Checkpoint import: every format round trips exactly; non-state-dicts and misfits are named.

Checkpoints are written in each format's real key layout from a torchvision ResNet-18 or tiny
timm models built without pretrained weights, with every float tensor randomised so that a
round trip cannot pass by accident on default initialisations.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from torch import Tensor, nn

from ftsweep.backbones.checkpoint import (
    CHECKPOINT_FORMATS,
    CheckpointError,
    detect_format,
    load_backbone_weights,
    load_state_dict_file,
    remap_state_dict,
)


def _randomised(model: nn.Module, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            out[k] = torch.rand(v.shape, generator=g, dtype=v.dtype) + 0.5
        else:
            out[k] = torch.randint(0, 1000, v.shape, generator=g, dtype=v.dtype)
    return out


def _resnet18(headless: bool) -> nn.Module:
    model = torchvision.models.resnet18(weights=None, num_classes=7)
    if headless:
        model.fc = nn.Identity()
    return model


def _tiny_vit() -> nn.Module:
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, depth=2)


def _mlp(prefix: str, dims: tuple[int, ...], seed: int) -> dict[str, Tensor]:
    """Keys of an nn.Sequential(Linear, ReLU, Linear, …) MLP under ``prefix``."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        out[f"{prefix}{2 * i}.weight"] = torch.randn(b, a, generator=g)
        out[f"{prefix}{2 * i}.bias"] = torch.randn(b, generator=g)
    return out


def _under(prefix: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {prefix + k: v for k, v in state.items()}


@cache
def _resnet_body_cached(seed: int) -> dict[str, Tensor]:
    return _randomised(_resnet18(headless=True), seed)


def _resnet_body(seed: int) -> dict[str, Tensor]:
    """A randomised headless ResNet-18 state dict (the values the backbone must end up with).

    Cached per seed (randomising 11 M values is slow on a busy CPU); returns a fresh dict whose
    tensors nobody mutates in place.
    """
    return dict(_resnet_body_cached(seed))


def _other(body: dict[str, Tensor]) -> dict[str, Tensor]:
    """Different values of the same shapes (a momentum/target encoder that must be dropped)."""
    return {k: -v if v.is_floating_point() else v + 1 for k, v in body.items()}


def _moco_v2(body: dict[str, Tensor]) -> object:
    q = {**body, **_mlp("fc.", (512, 512, 128), 1)}
    k = {**_other(body), **_mlp("fc.", (512, 512, 128), 2)}  # the momentum encoder
    state = {
        **_under("module.encoder_q.", q),
        **_under("module.encoder_k.", k),
        "module.queue": torch.randn(128, 16),
        "module.queue_ptr": torch.zeros(1, dtype=torch.long),
    }
    return {"epoch": 200, "arch": "resnet18", "state_dict": state, "optimizer": {"state": {}}}


def _simclr_in_backbone_fc(body: dict[str, Tensor]) -> object:
    # SimCLR re-implementations that put the projection MLP in the ResNet's own ``fc``.
    return _under("backbone.", {**body, **_mlp("fc.", (512, 512, 128), 3)})


def _simclr_lightly(body: dict[str, Tensor]) -> object:
    state = {**_under("backbone.", body), **_mlp("projection_head.layers.", (512, 128), 4)}
    return {"state_dict": state, "epoch": 10}


def _simclr_encoder(body: dict[str, Tensor]) -> object:
    return {**_under("encoder.", body), **_mlp("projector.", (512, 128), 5)}


def _byol(body: dict[str, Tensor]) -> object:
    return {
        **_under("online_network.encoder.", body),
        **_mlp("online_network.projector.", (512, 256, 64), 6),
        **_under("target_network.encoder.", _other(body)),
        **_mlp("predictor.", (64, 256, 64), 7),
    }


def _byol_lucidrains(body: dict[str, Tensor]) -> object:
    net = {**body, "fc.weight": torch.randn(7, 512), "fc.bias": torch.randn(7)}
    return {**_under("online_encoder.net.", net), **_mlp("online_predictor.net.", (64, 64), 8)}


def _torchvision_full(body: dict[str, Tensor]) -> object:
    return {**body, "fc.weight": torch.randn(7, 512), "fc.bias": torch.randn(7)}


def _data_parallel(body: dict[str, Tensor]) -> object:
    return _under("module.", _torchvision_full(body))


def _ftsweep(body: dict[str, Tensor]) -> object:
    return _under("backbone.", body)


RESNET_CASES = {
    "moco_v2": (_moco_v2, "moco_v2"),
    "simclr_fc_mlp": (_simclr_in_backbone_fc, "simclr"),
    "simclr_lightly": (_simclr_lightly, "simclr"),
    "simclr_encoder": (_simclr_encoder, "simclr"),
    "byol": (_byol, "byol"),
    "byol_lucidrains": (_byol_lucidrains, "byol"),
    "torchvision": (_torchvision_full, "torchvision"),
    "data_parallel": (_data_parallel, "torchvision"),
    "ftsweep": (_ftsweep, "ftsweep"),
}


def _assert_equal_state(model: nn.Module, expected: dict[str, Tensor]) -> None:
    got = model.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in got), "values must round trip exactly"


@pytest.mark.parametrize("case", sorted(RESNET_CASES))
def test_resnet_checkpoints_round_trip(case: str, tmp_path: Path) -> None:
    make, fmt = RESNET_CASES[case]
    body = _resnet_body(seed=0)
    path = tmp_path / f"{case}.pth"
    torch.save(make(body), path)
    raw = load_state_dict_file(path)
    assert detect_format(raw) == ("timm" if fmt == "torchvision" else fmt)  # same rule
    explicit, auto = remap_state_dict(raw, fmt), remap_state_dict(raw)
    assert explicit.keys() == auto.keys() == body.keys()
    assert all(explicit[k] is auto[k] for k in body), "explicit and auto pick the same tensors"
    backbone = _resnet18(headless=True)
    load_backbone_weights(backbone, path)
    _assert_equal_state(backbone, body)


def test_mae_checkpoint_round_trips_into_timm_vit(tmp_path: Path) -> None:
    vit = _tiny_vit()
    body = _randomised(vit, seed=1)
    dim = body["cls_token"].shape[-1]
    decoder = {
        "mask_token": torch.randn(1, 1, 16),
        "decoder_embed.weight": torch.randn(16, dim),
        "decoder_pos_embed": torch.randn(1, 5, 16),
        "decoder_blocks.0.norm1.weight": torch.randn(16),
        "decoder_norm.weight": torch.randn(16),
        "decoder_pred.weight": torch.randn(3 * 16 * 16, 16),
    }
    path = tmp_path / "mae.pth"
    torch.save({"model": {**body, **decoder}}, path)
    assert detect_format(load_state_dict_file(path)) == "mae"
    for fmt in ("auto", "mae"):
        fresh = _tiny_vit()
        load_backbone_weights(fresh, path, format=fmt)
        _assert_equal_state(fresh, body)


def test_timm_classifier_checkpoint_round_trips_headless(tmp_path: Path) -> None:
    full = timm.create_model("resnet10t", pretrained=False, num_classes=5)
    state = _randomised(full, seed=2)
    assert "fc.weight" in state
    path = tmp_path / "timm.pth"
    torch.save({"state_dict": state, "state_dict_ema": state, "epoch": 3}, path)
    headless = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    load_backbone_weights(headless, path, format="timm")
    _assert_equal_state(headless, {k: v for k, v in state.items() if not k.startswith("fc.")})


def test_vit_head_is_dropped(tmp_path: Path) -> None:
    body = _randomised(_tiny_vit(), seed=3)
    dim = body["cls_token"].shape[-1]
    path = tmp_path / "vit_cls.pth"
    torch.save({**body, "head.weight": torch.randn(10, dim), "head.bias": torch.randn(10)}, path)
    fresh = _tiny_vit()
    load_backbone_weights(fresh, path)
    _assert_equal_state(fresh, body)


def test_missing_num_batches_tracked_is_tolerated(tmp_path: Path) -> None:
    body = _resnet_body(seed=4)
    old = {k: v for k, v in body.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(old, path)
    backbone = _resnet18(headless=True)
    load_backbone_weights(backbone, path)
    got = backbone.state_dict()
    assert all(torch.equal(got[k], v) for k, v in old.items())


# --------------------------------------------------------------------------- refusals


@dataclasses.dataclass
class _NotAStateDict:
    weights: list[float]


@pytest.mark.parametrize(
    ("obj", "found"),
    [
        (nn.Linear(2, 2), "holds an object of class torch.nn.modules.linear.Linear, which weights-only"),
        (_NotAStateDict([1.0]), "_NotAStateDict, which weights-only loading refuses"),
        ([torch.zeros(2), torch.ones(2)], "found list"),
        (torch.zeros(3), "found Tensor"),
        ({"epoch": 3, "lr": 0.1}, "found dict with keys epoch, lr"),
        ({"conv.weight": torch.zeros(1), "step": 5}, "'step': int"),
        ({}, "empty mapping"),
    ],
    ids=["module", "object", "list", "tensor", "no-tensors", "mixed", "empty"],
)
def test_non_state_dicts_are_refused(obj: object, found: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="is not a state dict") as err:
        load_state_dict_file(path)
    assert found in str(err.value) and str(path) in str(err.value)
    with pytest.raises(CheckpointError, match="is not a state dict"):
        load_backbone_weights(_resnet18(headless=True), path)


def test_a_refused_object_is_named_in_one_plain_line(tmp_path: Path) -> None:
    """torch's refusal is a paragraph with terminal escapes; the error names the class."""
    path = tmp_path / "module.pth"
    torch.save({"net": nn.Linear(2, 2)}, path)
    with pytest.raises(CheckpointError) as err:
        load_state_dict_file(path)
    text = str(err.value)
    assert "\x1b" not in text and "\n" not in text and "torch.nn.modules.linear.Linear" in text


def test_a_training_checkpoint_with_its_argparse_arguments_loads(tmp_path: Path) -> None:
    """MAE's, DeiT's, DINO's and timm's train.py checkpoints keep an ``argparse.Namespace``
    beside the weights (and the optimiser's state): the weights under ``model`` load, exactly."""
    import argparse

    net = _resnet18(headless=True)
    path = tmp_path / "checkpoint-99.pth"
    torch.save(
        {"model": net.state_dict(), "epoch": 99, "args": argparse.Namespace(lr=1.5e-4, model="r18")}, path
    )
    loaded = load_state_dict_file(path)
    assert loaded.keys() == net.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("cut", [0, 8, 0.5], ids=["empty", "header-cut", "half"])
def test_an_empty_or_truncated_safetensors_file_is_a_checkpoint_error(cut: float, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    save_file({k: v.contiguous() for k, v in _resnet18(headless=True).state_dict().items()}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    with pytest.raises(CheckpointError, match="cannot be read as safetensors") as err:
        load_state_dict_file(bad)
    assert str(bad) in str(err.value)
    assert load_state_dict_file(good).keys() == _resnet18(headless=True).state_dict().keys()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_state_dict_file(tmp_path / "nope.pth")


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    body = _resnet_body(seed=5)
    state = {k: v for k, v in body.items() if not k.startswith("layer4.")}
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    backbone = _resnet18(headless=True)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_backbone_weights(backbone, path, format="torchvision")
    msg = str(err.value)
    n_missing = sum(k.startswith("layer4.") and not k.endswith("num_batches_tracked") for k in before)
    assert f"{n_missing} missing keys (layer4.0.conv1.weight" in msg
    assert "more)" in msg
    assert "1 unexpected keys (extra.weight)" in msg
    assert "format 'torchvision'" in msg and "ResNet" in msg
    _assert_equal_state(backbone, before)  # untouched


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    body = _resnet_body(seed=6)
    body["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "shape.pth"
    torch.save(_under("backbone.", body), path)
    with pytest.raises(CheckpointError) as err:
        load_backbone_weights(_resnet18(headless=True), path)
    msg = str(err.value)
    assert "format auto → 'ftsweep'" in msg
    assert "1 shape mismatches (conv1.weight: checkpoint (64, 3, 3, 3) vs backbone (64, 3, 7, 7))" in msg
    assert "missing" not in msg and "unexpected" not in msg


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(_resnet_body(seed=7), path)
    r34 = torchvision.models.resnet34(weights=None)
    r34.fc = nn.Identity()
    with pytest.raises(CheckpointError, match=r"missing keys \(layer1\.2\."):
        load_backbone_weights(r34, path)


def test_unknown_format_and_wrong_prefix() -> None:
    state = {"conv1.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'dino'.*moco_v2"):
        remap_state_dict(state, "dino")
    with pytest.raises(CheckpointError, match="format 'moco_v2': no key starts with 'encoder_q.'"):
        remap_state_dict(state, "moco_v2")


def test_remap_drops_only_non_backbone_keys() -> None:
    body = _resnet_body(seed=8)
    for fmt in CHECKPOINT_FORMATS:
        assert fmt in {"moco_v2", "simclr", "byol", "mae", "timm", "torchvision", "ftsweep", "lightning"}
    out = remap_state_dict(_moco_v2(body)["state_dict"], "moco_v2")  # type: ignore[index]
    assert set(out) == set(body)
    assert all(out[k] is body[k] for k in body), "tensors are shared, not copied"


def test_ftsweep_small_cnn_checkpoint_round_trips(tmp_path: Path) -> None:
    """The layout ``ftsweep pretrain`` writes: the backbone's state dict under ``backbone.``."""
    from ftsweep.backbones.small_cnn import SmallCNN

    body = _randomised(SmallCNN(), seed=9)
    path = tmp_path / "simclr_small_cnn.pt"
    torch.save(_under("backbone.", body), path)
    assert detect_format(load_state_dict_file(path)) == "ftsweep"
    fresh = SmallCNN()
    load_backbone_weights(fresh, path)
    _assert_equal_state(fresh, body)


def test_a_backbone_layer_named_like_a_classifier_is_kept(tmp_path: Path) -> None:
    """SelecSLS's last convolutions are ``head.<i>.*``, a classifier pattern: its own state dict
    was refused ("20 missing keys (head.0.0.weight …)") under every format."""
    from ftsweep.backbones import check_backbone_weights, create_backbone

    model = create_backbone("selecsls42b")
    torch.manual_seed(0)
    state = {k: torch.randn(v.shape) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    assert any(k.startswith("head.0.") for k in state)
    path = tmp_path / "selecsls42b.pt"
    torch.save(state, path)
    check_backbone_weights("selecsls42b", path)
    fresh = create_backbone("selecsls42b")
    load_backbone_weights(fresh, path)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())
    with_fc = {**state, "fc.weight": torch.zeros(1000, 1024), "fc.bias": torch.zeros(1000)}
    torch.save(with_fc, path)  # a classifier the backbone lacks is still dropped
    check_backbone_weights("selecsls42b", path)


def test_a_wrongly_detected_format_names_the_one_that_fits(tmp_path: Path) -> None:
    """A plain state dict whose own keys start with ``encoder.`` (timm's qwen3 / gemma4 ViTs)
    is detected as SimCLR and refused; the error now names the format that loads it."""
    from torch import nn

    from ftsweep.backbones import CheckpointError

    class Encoded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(3, 4)
            self.norm = nn.LayerNorm(4)

    model = Encoded()
    path = tmp_path / "own.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load_backbone_weights(Encoded(), path)
    assert "(format auto → 'simclr') does not fit Encoded" in str(err.value)
    assert str(err.value).endswith("; it fits as checkpoint_format: mae or timm or torchvision")
    fresh = Encoded()
    load_backbone_weights(fresh, path, format="timm")
    assert torch.equal(fresh.encoder.weight, model.encoder.weight)


@pytest.mark.parametrize("arch", ["levit_128s", "repvit_m0_9", "efficientvit_b0"])
def test_a_timm_model_state_dict_loads_whatever_its_head_is_called(arch: str, tmp_path: Path) -> None:
    """``timm.create_model(arch, num_classes=7).state_dict()``: the classifier's keys (LeViT's
    ``head.bn``/``head.linear``, RepViT's ``head.head.*``, EfficientViT's ``head.classifier.4``)
    match none of the fixed head patterns; they are the keys the headless model lacks."""
    from ftsweep.backbones import check_backbone_weights, create_backbone
    from ftsweep.backbones.factory import classifier_keys

    torch.manual_seed(0)
    full = timm.create_model(arch, pretrained=False, num_classes=7)
    path = tmp_path / f"{arch}.pth"
    torch.save(full.state_dict(), path)
    heads = classifier_keys(arch)
    assert heads and heads == set(full.state_dict()) - set(create_backbone(arch).state_dict())
    check_backbone_weights(arch, path)
    backbone = create_backbone(arch)
    load_backbone_weights(backbone, path)
    want = {k: v for k, v in full.state_dict().items() if k not in heads}
    assert backbone.state_dict().keys() == want.keys()
    assert all(torch.equal(backbone.state_dict()[k], v) for k, v in want.items())
    # the same file as timm's hub weights of the architecture (pretrained: timm) reads the same
    from ftsweep.backbones.weights import timm_state

    assert timm_state(path, arch).keys() == want.keys()


def test_a_lightning_checkpoint_loads_as_the_lightning_format(tmp_path: Path) -> None:
    """A LightningModule holding the network as ``self.model`` saves ``{"state_dict":
    {"model.conv1.weight": …}}`` (with its loss modules beside it): not auto-detected, but the
    refusal names ``checkpoint_format: lightning``, under which it loads exactly."""
    from ftsweep.backbones import check_backbone_weights

    net = _resnet18(headless=False)
    state = {f"model.{k}": v for k, v in net.state_dict().items()} | {"criterion.weight": torch.ones(3)}
    path = tmp_path / "epoch=9-step=100.ckpt"
    torch.save({"state_dict": state, "epoch": 9, "global_step": 100}, path)
    with pytest.raises(CheckpointError, match="it fits as checkpoint_format: lightning"):
        check_backbone_weights("torchvision.resnet18", path)
    check_backbone_weights("torchvision.resnet18", path, format="lightning")
    backbone = _resnet18(headless=True)
    load_backbone_weights(backbone, path, format="lightning")
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, net.state_dict()[k])
