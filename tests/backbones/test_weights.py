"""Named weights: registry, torchvision enums and timm tags resolve to verified cache files, offline.

Every file is a real-format checkpoint (a ResNet-18 ``state_dict`` written with ``torch.save`` in
torch.hub's cache layout, or a timm ``state_dict`` as ``model.safetensors`` in the Hugging Face
hub cache layout) placed in a temporary ``TORCH_HOME`` / ``HF_HOME``; nothing touches the network.
"""

from __future__ import annotations

import hashlib
import urllib.error
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from ftsweep.backbones import (
    WEIGHTS,
    create_backbone,
    is_known_backbone,
    is_named_weights,
    list_weights,
    load_backbone_weights,
    load_named_weights,
    resolve_weights,
)
from ftsweep.backbones import weights as W
from ftsweep.config import ConfigError


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url: str, dst: Path) -> None:
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(W, "download_file", offline)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _resnet18_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None)
    return model.state_dict()


def _place(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def _entry(monkeypatch, name: str, **changes) -> W.NamedWeights:
    entry = replace(WEIGHTS["resnet18_imagenet1k_v1"], name=name, **changes)
    monkeypatch.setitem(W.WEIGHTS, name, entry)
    return entry


def test_registry_entries_are_complete_and_match_their_sources() -> None:
    from ftsweep.backbones.checkpoint import CHECKPOINT_FORMATS

    assert set(WEIGHTS) == {"moco_v2_800ep", "mae_vit_b16", "resnet18_imagenet1k_v1"}
    for w in WEIGHTS.values():
        assert w.url.startswith("https://") and w.hash_algo in ("md5", "sha256")
        assert w.format in CHECKPOINT_FORMATS and is_known_backbone(w.backbone)
        assert len(w.hash_prefix) >= 6 and int(w.hash_prefix, 16) >= 0
    tv = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert WEIGHTS["resnet18_imagenet1k_v1"].url == tv.url
    assert tv.url.endswith(f"-{WEIGHTS['resnet18_imagenet1k_v1'].hash_prefix}.pth")
    names = list_weights()
    assert all(n in names for n in WEIGHTS) and "timm" in names and "torchvision:<WEIGHTS>" in names
    assert all(is_named_weights(n) for n in (*WEIGHTS, "timm", "torchvision:DEFAULT"))
    assert not is_named_weights("/ckpt/x.pth") and not is_named_weights("auto")


def test_a_registry_file_in_the_cache_is_verified_and_loads(torch_home, monkeypatch) -> None:
    state = _resnet18_state(1)
    path = _place(torch_home / "resnet18-test.pth", state)
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    _entry(
        monkeypatch,
        "test_r18",
        url="https://example.org/resnet18-test.pth",
        hash_algo="md5",
        hash_prefix=digest[:8],
    )
    resolved = resolve_weights("test_r18", "torchvision.resnet18", download=False)
    assert resolved.path == path and resolved.format == "torchvision"
    backbone = create_backbone("torchvision.resnet18")
    load_backbone_weights(backbone, "test_r18")  # the name, resolved against backbone.backbone_name
    got = backbone.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items() if not k.startswith("fc."))


def test_a_moco_format_registry_file_loads_through_the_remapping(torch_home, monkeypatch) -> None:
    state = _resnet18_state(2)
    moco = {f"module.encoder_q.{k}": v for k, v in state.items()}
    moco |= {f"module.encoder_k.{k}": v for k, v in state.items()} | {"module.queue": torch.zeros(8, 4)}
    path = _place(torch_home / "moco.pth.tar", {"epoch": 800, "arch": "resnet18", "state_dict": moco})
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    _entry(
        monkeypatch,
        "test_moco",
        url="https://example.org/moco.pth.tar",
        format="moco_v2",
        hash_prefix=sha[:10],
    )
    backbone = create_backbone("torchvision.resnet18")
    load_named_weights(backbone, "torchvision.resnet18", "test_moco", download=False)
    assert torch.equal(backbone.state_dict()["conv1.weight"], state["conv1.weight"])


def test_a_hash_mismatch_names_the_file_and_both_hashes(torch_home, monkeypatch) -> None:
    path = _place(torch_home / "resnet18-test.pth", _resnet18_state())
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    _entry(
        monkeypatch,
        "test_r18",
        url="https://example.org/resnet18-test.pth",
        hash_algo="md5",
        hash_prefix="00000000",
    )
    with pytest.raises(ConfigError) as err:
        resolve_weights("test_r18", "torchvision.resnet18")
    msg = str(err.value)
    assert err.value.field == "pretrained" and str(path) in msg and digest in msg and "00000000" in msg


def test_a_missing_file_offline_names_the_url_and_the_cache_path(torch_home) -> None:
    w = WEIGHTS["moco_v2_800ep"]
    for download in (True, False):
        with pytest.raises(ConfigError) as err:
            resolve_weights("moco_v2_800ep", "torchvision.resnet50", download=download)
        msg = str(err.value)
        assert w.url in msg and str(torch_home / "moco_v2_800ep_pretrain.pth.tar") in msg


def test_registry_weights_refuse_another_backbone(torch_home) -> None:
    with pytest.raises(ConfigError, match="fits backbone torchvision.resnet50, not torchvision.resnet18"):
        resolve_weights("moco_v2_800ep", "torchvision.resnet18")


def test_torchvision_enum_values(torch_home, monkeypatch) -> None:
    assert W.torchvision_weights("torchvision:DEFAULT", "torchvision.resnet50").url.endswith(
        "resnet50-11ad3fa6.pth"
    )
    assert W.torchvision_weights("torchvision:IMAGENET1K_V1", "torchvision.resnet50").url.endswith(
        "resnet50-0676ba61.pth"
    )
    with pytest.raises(ConfigError, match="allowed: torchvision:IMAGENET1K_V1, torchvision:IMAGENET1K_V2"):
        W.torchvision_weights("torchvision:IMAGENET22K", "torchvision.resnet50")
    with pytest.raises(ConfigError, match="torchvision.<arch> backbone"):
        resolve_weights("torchvision:DEFAULT", "vit_base_patch16_224")
    # missing offline: torch.hub's cache path and torchvision's URL
    with pytest.raises(ConfigError) as err:
        resolve_weights("torchvision:IMAGENET1K_V1", "torchvision.resnet18")
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in str(err.value)
    assert str(torch_home / "resnet18-f37072fd.pth") in str(err.value)
    # a file placed by hand under torchvision's name is checked against the name's sha256 prefix
    _place(torch_home / "resnet18-f37072fd.pth", _resnet18_state())
    with pytest.raises(ConfigError, match="does not start with the published f37072fd"):
        resolve_weights("torchvision:IMAGENET1K_V1", "torchvision.resnet18")


def test_torchvision_weights_with_a_matching_hash_load(torch_home, monkeypatch) -> None:
    state = _resnet18_state(3)
    tmp = _place(torch_home / "tmp.pth", state)
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    tmp.rename(torch_home / f"resnet18-{sha}.pth")

    class Fake:
        url = f"https://download.pytorch.org/models/resnet18-{sha}.pth"

    monkeypatch.setattr(W, "torchvision_weights", lambda value, backbone: Fake)
    backbone = create_backbone("torchvision.resnet18")
    resolved = load_named_weights(backbone, "torchvision.resnet18", "torchvision:IMAGENET1K_V1")
    assert resolved.path.name == f"resnet18-{sha}.pth"
    assert torch.equal(backbone.state_dict()["layer4.1.bn2.weight"], state["layer4.1.bn2.weight"])


def test_tagged_timm_names_are_backbones() -> None:
    assert is_known_backbone("resnet50.a1_in1k") and is_known_backbone("vit_base_patch16_224.mae")
    assert is_known_backbone("timm.resnet18.a1_in1k") and is_known_backbone("resnet50")
    assert not is_known_backbone("resnet50.no_such_tag") and not is_known_backbone("no_such_arch.a1_in1k")
    assert create_backbone("resnet18.a1_in1k").num_features == 512
    with pytest.raises(KeyError, match="unknown backbone"):
        create_backbone("resnet50.no_such_tag")


def _hf_place(home: Path, repo: str, state: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    folder = home / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    path = folder / "snapshots" / commit / "model.safetensors"
    path.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def test_timm_tag_weights_load_from_the_hf_cache_offline(tmp_path, monkeypatch) -> None:
    import timm

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(4)
    full = timm.create_model("resnet18.a1_in1k", pretrained=False).state_dict()  # with its fc head
    path = _hf_place(tmp_path / "hf", "timm/resnet18.a1_in1k", full)
    backbone = create_backbone("resnet18.a1_in1k")
    resolved = load_named_weights(backbone, "resnet18.a1_in1k", "timm")
    assert resolved.path == path and resolved.via_timm
    got = backbone.state_dict()
    assert all(torch.equal(got[k], full[k]) for k in got)


def test_timm_weights_missing_offline_name_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as err:
        resolve_weights("timm", "vit_base_patch16_224.mae")
    msg = str(err.value)
    assert str(tmp_path / "hf" / "hub" / "models--timm--vit_base_patch16_224.mae") in msg
    assert "HF_HUB_OFFLINE" in msg and "huggingface.co/timm/vit_base_patch16_224.mae" in msg
    # what the cache lookup found, not an empty "()"
    assert (
        "is set (model.safetensors: LocalEntryNotFoundError; pytorch_model.bin: LocalEntryNotFoundError)"
        in msg
    )
    with pytest.raises(ConfigError, match="need a timm backbone"):
        resolve_weights("timm", "torchvision.resnet50")


def _timm_home(tmp_path, monkeypatch, *, offline: bool = True) -> Path:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "hf"


def test_timm_weights_missing_a_block_are_refused_not_half_loaded(tmp_path, monkeypatch) -> None:
    """timm's loader, told ``num_classes=0``, loads non-strictly: a file without ``layer4`` left
    it at random initialisation, silently. Refused at validation and at load, naming the keys;
    the classifier (``fc``) is the one part a headless backbone leaves out."""
    import timm

    from ftsweep.backbones import CheckpointError
    from ftsweep.config.checks import check_checkpoint

    home = _timm_home(tmp_path, monkeypatch)
    full = timm.create_model("resnet18.a1_in1k", pretrained=False).state_dict()
    partial = {k: v for k, v in full.items() if not k.startswith("layer4.")}
    _hf_place(home, "timm/resnet18.a1_in1k", partial)
    n = sum(1 for k in full if k.startswith("layer4.") and not k.endswith("num_batches_tracked"))
    with pytest.raises(ConfigError, match=rf"does not fit resnet18.a1_in1k: {n} missing keys \(layer4\."):
        check_checkpoint("resnet18.a1_in1k", "timm")
    backbone = create_backbone("resnet18.a1_in1k")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(CheckpointError, match=f"{n} missing keys"):
        load_named_weights(backbone, "resnet18.a1_in1k", "timm")
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())  # untouched


def test_a_truncated_timm_file_is_refused_at_validation(tmp_path, monkeypatch) -> None:
    import timm

    from ftsweep.config.checks import check_checkpoint

    home = _timm_home(tmp_path, monkeypatch)
    path = _hf_place(home, "timm/resnet18.a1_in1k", timm.create_model("resnet18.a1_in1k").state_dict())
    check_checkpoint("resnet18.a1_in1k", "timm")  # whole: fits
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ConfigError, match=r"cannot be read as safetensors \(\d+ bytes: .*truncated"):
        check_checkpoint("resnet18.a1_in1k", "timm")


def test_cached_timm_weights_are_read_without_asking_the_hub(tmp_path, monkeypatch) -> None:
    """Downloads allowed and the file cached: only the cache is asked (a trial read the hub's
    newest revision, and needed the network, though validation had checked the cached one)."""
    import huggingface_hub
    import timm

    home = _timm_home(tmp_path, monkeypatch, offline=False)
    path = _hf_place(home, "timm/resnet18.a1_in1k", timm.create_model("resnet18.a1_in1k").state_dict())
    asked = []
    real = huggingface_hub.hf_hub_download

    def recording(*args, **kwargs):
        asked.append(kwargs["local_files_only"])
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", recording)
    assert resolve_weights("timm", "resnet18.a1_in1k", download=True).path == path
    assert asked == [True]


def test_a_failed_download_leaves_no_cache_folders(tmp_path) -> None:
    """``validate`` on weights not cached made ``$TORCH_HOME/hub/checkpoints`` though the
    download failed: something written before the error line."""
    dst = tmp_path / "torch" / "hub" / "checkpoints" / "w.pth"
    with pytest.raises(urllib.error.URLError):
        W._download(f"file://{tmp_path}/no-such-file.pth", dst)  # fails at once, no network
    assert list(tmp_path.iterdir()) == []
