"""Pre-trained weights by name: the papers' checkpoints, torchvision's weights enums, timm tags.

A ``pretrained:`` value is one of

- a name of :data:`WEIGHTS` (the papers' own checkpoints: one frozen :class:`NamedWeights` entry
  each, with the URL, the hash prefix its publisher gives and the checkpoint format),
- ``torchvision:<ENUM>`` (``torchvision:IMAGENET1K_V2``, ``torchvision:DEFAULT``): any value of
  the torchvision weights enum of a ``torchvision.<arch>`` backbone,
- ``timm``: the weights of the timm backbone's tag (``resnet50.a1_in1k``,
  ``vit_base_patch16_224.mae``), loaded through timm from the Hugging Face hub cache,
- or a checkpoint file path (``auto`` and ``none`` are handled by the caller).

Files live in the standard caches: torch.hub's ``$TORCH_HOME/hub/checkpoints`` (``TORCH_HOME``
read at call time) for registry and torchvision weights, the Hugging Face hub cache
(``$HF_HUB_CACHE`` or ``$HF_HOME/hub``; ``HF_HUB_OFFLINE`` honoured) for timm. torch.hub checks a
hash only while downloading, so a file already in the cache — including one placed there by
hand — is checked here against the known hash prefix before use (md5 for the MoCo and MAE
releases, sha256 for torchvision's ``<name>-<sha256 prefix>.pth`` files). timm's hub weights carry
no publisher hash in timm's config and are not checked.

Every failure is a :class:`~ftsweep.config.ConfigError` on ``pretrained``: an unknown name, weights
of another backbone, a file that is missing and cannot be downloaded (naming the URL and the exact
cache path where it may be placed by hand) or a hash mismatch (naming the file and both hashes).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ftsweep.config.errors import ConfigError

__all__ = [
    "WEIGHTS",
    "NamedWeights",
    "ResolvedWeights",
    "file_hash",
    "hf_cache_dir",
    "is_named_weights",
    "list_weights",
    "load_named_weights",
    "resolve_weights",
    "timm_state",
    "torch_cache_dir",
    "weights_file",
]

FIELD = "pretrained"
TORCHVISION_PREFIX = "torchvision:"
TIMM = "timm"
#: torch.hub's rule for the hash prefix in a file name (``resnet18-f37072fd.pth``)
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")
CHUNK = 1 << 20


@dataclass(frozen=True)
class NamedWeights:
    """One checkpoint a spec may name.

    Attributes:
        name: the ``pretrained:`` value.
        url: where the publisher serves the file; its base name is the cache file name.
        backbone: the ftsweep backbone it fits (``torchvision.resnet50``, ``vit_base_patch16_224``).
        format: key-remapping rule (``ftsweep.backbones.checkpoint.CHECKPOINT_FORMATS``).
        hash_algo: ``md5`` or ``sha256``.
        hash_prefix: the prefix of the file's hex digest the publisher gives.
        source: where the URL and the hash are published.
        description: one line for ``ftsweep list``.
    """

    name: str
    url: str
    backbone: str
    format: str
    hash_algo: str
    hash_prefix: str
    source: str
    description: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


WEIGHTS: dict[str, NamedWeights] = {
    w.name: w
    for w in (
        NamedWeights(
            name="moco_v2_800ep",
            url="https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",
            backbone="torchvision.resnet50",
            format="moco_v2",
            hash_algo="md5",
            hash_prefix="a04e12f8",
            source="github.com/facebookresearch/moco README, Models table (md5 column)",
            description="MoCo v2 ResNet-50, 800 epochs on ImageNet (COIN, Core-tuning, UOT)",
        ),
        NamedWeights(
            name="mae_vit_b16",
            url="https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth",
            backbone="vit_base_patch16_224",
            format="mae",
            hash_algo="md5",
            hash_prefix="8cad7c",
            source="github.com/facebookresearch/mae README, pre-trained checkpoints table (md5 row)",
            description="MAE ViT-B/16 encoder, 1600 epochs on ImageNet (stands in for SCHaNe's BEiT-3)",
        ),
        NamedWeights(
            name="resnet18_imagenet1k_v1",
            url="https://download.pytorch.org/models/resnet18-f37072fd.pth",
            backbone="torchvision.resnet18",
            format="torchvision",
            hash_algo="sha256",
            hash_prefix="f37072fd",
            source="torchvision ResNet18_Weights.IMAGENET1K_V1 (sha256 prefix in the file name)",
            description="torchvision ResNet-18, supervised ImageNet-1k (target pretraining, UOT)",
        ),
    )
}


@dataclass(frozen=True)
class ResolvedWeights:
    """A ``pretrained:`` name resolved to a verified local file.

    Attributes:
        name: the value as given.
        path: the file in the cache.
        format: key-remapping rule for :func:`~ftsweep.backbones.load_backbone_weights`;
            ``timm`` files are read by :func:`timm_state` instead (:func:`load_named_weights`).
        via_timm: a timm hub file (``pretrained: timm``), read by :func:`timm_state`.
    """

    name: str
    path: Path
    format: str
    via_timm: bool = False


def is_named_weights(value: str) -> bool:
    """True for a registry name, ``torchvision:<ENUM>`` or ``timm`` (not for a path)."""
    return value in WEIGHTS or value == TIMM or value.startswith(TORCHVISION_PREFIX)


def list_weights() -> dict[str, str]:
    """Every ``pretrained:`` name with a one-line description (registry first, then patterns)."""
    out = {w.name: f"{w.description}; backbone {w.backbone}; {w.url}" for w in WEIGHTS.values()}
    out["torchvision:<WEIGHTS>"] = (
        "a torchvision weights enum value of a torchvision.<arch> backbone (IMAGENET1K_V1, DEFAULT …)"
    )
    out[TIMM] = "the pre-trained weights of the timm backbone's tag (resnet50.a1_in1k …), via timm"
    return out


def torch_cache_dir() -> Path:
    """torch.hub's checkpoint directory, ``$TORCH_HOME/hub/checkpoints`` (read at call time)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, ``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (read at call time)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home) / "hub"


def _hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def file_hash(path: str | os.PathLike[str], algo: str) -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


_VERIFIED: dict[tuple[str, int, int, str, str], bool] = {}


def _verify(path: Path, algo: str, prefix: str, value: str) -> None:
    """Raise ConfigError unless the file's ``algo`` digest starts with ``prefix`` (memoised per
    path, size and mtime, so trials of one process hash a file once)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, algo, prefix)
    if _VERIFIED.get(key):
        return
    digest = file_hash(path, algo)
    if not digest.startswith(prefix):
        raise ConfigError(
            FIELD,
            value,
            f"{path} fails its integrity check: {algo} {digest} does not start with the published "
            f"{prefix}; delete the file and download it again",
        )
    _VERIFIED[key] = True


def _download(url: str, dst: Path) -> None:
    """Download through torch.hub into ``dst`` (written to a temporary file, then renamed)."""
    import torch.hub

    made = [d for d in (dst.parent, *dst.parent.parents) if not d.exists()]
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(dst), progress=False)
    except BaseException:  # a failed download leaves no empty cache folders behind
        for d in made:  # innermost first; only while empty
            try:
                d.rmdir()
            except OSError:
                break
        raise


#: the download function (tests replace it to simulate an offline machine without network use)
download_file: Callable[[str, Path], None] = _download


def _cached_file(value: str, url: str, dst: Path, download: bool) -> Path:
    """``dst`` if it exists, else download ``url`` there; else a ConfigError saying where to put it."""
    if dst.is_file():
        return dst
    hint = f"place the file there by hand (download {url}) and validate again"
    if not download:
        raise ConfigError(FIELD, value, f"{dst} is not in the cache and downloads are off; {hint}")
    try:
        download_file(url, dst)
    except Exception as err:  # noqa: BLE001 — URLError, HTTPError, OSError, timeouts
        raise ConfigError(
            FIELD, value, f"{dst} is missing and {url} could not be downloaded ({err}); {hint}"
        ) from err
    return dst


def _norm_backbone(backbone: str) -> str:
    return backbone.removeprefix("timm.")


def _registry(value: str, backbone: str, download: bool) -> ResolvedWeights:
    w = WEIGHTS[value]
    if _norm_backbone(backbone) != w.backbone:
        raise ConfigError(FIELD, value, f"fits backbone {w.backbone}, not {backbone}")
    path = _cached_file(value, w.url, torch_cache_dir() / w.filename, download)
    _verify(path, w.hash_algo, w.hash_prefix, value)
    return ResolvedWeights(value, path, w.format)


def torchvision_weights(value: str, backbone: str):  # noqa: ANN201 — a torchvision WeightsEnum member
    """The torchvision weights enum member ``value`` (``torchvision:IMAGENET1K_V2``) names for
    ``backbone`` (``torchvision.resnet50``)."""
    if not backbone.startswith("torchvision."):
        raise ConfigError(
            FIELD, value, f"torchvision weights need a torchvision.<arch> backbone, not {backbone}"
        )
    from torchvision.models import get_model_weights

    arch = backbone.removeprefix("torchvision.")
    enum = get_model_weights(arch)
    member = value.removeprefix(TORCHVISION_PREFIX)
    names = list(enum.__members__)
    if member not in names:
        allowed = ", ".join(TORCHVISION_PREFIX + n for n in names)
        raise ConfigError(FIELD, value, f"not a weights value of {backbone}; allowed: {allowed}")
    return enum[member]


def _torchvision(value: str, backbone: str, download: bool) -> ResolvedWeights:
    weights = torchvision_weights(value, backbone)
    filename = weights.url.rsplit("/", 1)[-1]
    path = _cached_file(value, weights.url, torch_cache_dir() / filename, download)
    match = HASH_IN_NAME.search(filename)
    if match:
        _verify(path, "sha256", match.group(1), value)
    return ResolvedWeights(value, path, "torchvision")


def _timm(value: str, backbone: str, download: bool) -> ResolvedWeights:
    import timm
    from timm.models import get_pretrained_cfg

    name = _norm_backbone(backbone)
    if backbone.startswith("torchvision.") or backbone == "small_cnn" or not timm.is_model(name):
        raise ConfigError(
            FIELD, value, f"timm weights need a timm backbone (resnet50.a1_in1k …), not {backbone}"
        )
    try:
        cfg = get_pretrained_cfg(name, allow_unregistered=False)
    except RuntimeError as err:
        raise ConfigError(FIELD, value, f"{backbone}: {err}") from err
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        tags = ", ".join(timm.list_pretrained(f"{name.split('.')[0]}.*")) or "none"
        raise ConfigError(
            FIELD, value, f"timm has no pre-trained weights for {backbone}; tagged names: {tags}"
        )
    if not cfg.hf_hub_id:  # an old-style URL config: torch.hub's cache, as timm uses it
        filename = cfg.url.rsplit("/", 1)[-1]
        path = _cached_file(value, cfg.url, torch_cache_dir() / filename, download)
        return ResolvedWeights(value, path, "timm", via_timm=True)
    return ResolvedWeights(value, _hf_file(value, cfg.hf_hub_id, cfg.hf_hub_filename, download), "timm", True)


def _hf_file(value: str, repo: str, filename: str | None, download: bool) -> Path:
    """The weights file of hub repo ``repo`` in the HF cache (downloaded unless offline)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    cache = hf_cache_dir()
    offline = _hf_offline() or not download
    candidates = [filename] if filename else ["model.safetensors", "pytorch_model.bin"]
    errors = []
    # the cached file first, without asking the hub (a trial reads what validation checked);
    # the hub only when it is in no cache
    for local_only in (True,) if offline else (True, False):
        for fname in candidates:
            try:
                return Path(hf_hub_download(repo, fname, cache_dir=cache, local_files_only=local_only))
            except EntryNotFoundError as err:
                errors.append(f"{fname}: {type(err).__name__}")
            except Exception as err:  # noqa: BLE001 — LocalEntryNotFoundError, HTTP and network errors
                errors.append(f"{fname}: {type(err).__name__}")
        if local_only and not offline:
            errors.clear()  # report what the last attempt (the hub) said
    folder = cache / f"models--{repo.replace('/', '--')}"
    why = (
        "HF_HUB_OFFLINE is set"
        if _hf_offline()
        else ("downloads are off" if not download else "download failed")
    )
    raise ConfigError(
        FIELD,
        value,
        f"timm weights {repo} are not in the Hugging Face cache {folder} and {why} "
        f"({'; '.join(errors)}); fetch https://huggingface.co/{repo}/resolve/main/{candidates[0]} "
        f"with `huggingface-cli download {repo}` on a machine with network and copy {folder}, "
        f"or give the downloaded file as pretrained: <path> with checkpoint_format: timm",
    )


def resolve_weights(value: str, backbone: str, *, download: bool = True) -> ResolvedWeights:
    """Resolve a named ``pretrained:`` value for ``backbone`` to a verified file in the cache.

    Args:
        value: a :data:`WEIGHTS` name, ``torchvision:<ENUM>`` or ``timm``.
        backbone: the ftsweep backbone name the weights are for.
        download: fetch a missing file (torch.hub / huggingface_hub); False only looks in the cache.

    Raises:
        ConfigError: on ``pretrained`` — unknown name, weights for another backbone, missing and
            not downloadable (URL and cache path named), hash mismatch (file and both hashes).
    """
    if value in WEIGHTS:
        return _registry(value, backbone, download)
    if value.startswith(TORCHVISION_PREFIX):
        return _torchvision(value, backbone, download)
    if value == TIMM:
        return _timm(value, backbone, download)
    raise ConfigError(
        FIELD, value, f"not a named weights value; allowed: {', '.join(list_weights())}, a file, auto or none"
    )


def timm_state(path: str | os.PathLike[str], backbone: str) -> dict[str, Any]:
    """A timm weights file (``model.safetensors`` or ``pytorch_model.bin``) as the state dict of
    the headless ``backbone``: its classifier is left out — every key the timm model with a head
    has and the headless one lacks (:func:`~ftsweep.backbones.factory.classifier_keys`: the
    layer its pretrained config names, and the rest of that module, LeViT's ``head.bn``), as
    ``timm.models.load_pretrained`` does for ``num_classes=0``.

    Raises:
        CheckpointError: the file cannot be read (empty, truncated, not a state dict).
    """
    from ftsweep.backbones.checkpoint import load_state_dict_file
    from ftsweep.backbones.factory import classifier_keys

    drop = classifier_keys(backbone)
    return {k: v for k, v in load_state_dict_file(path).items() if k not in drop}


def weights_file(
    value: str, backbone: str, *, format: str = "auto", download: bool = True
) -> tuple[str, str]:
    """The file a ``pretrained:`` value reads and the format to read it with: a named value
    (:func:`is_named_weights`, no file of that name) resolved to its verified cache file and its
    entry's format (``format`` other than ``auto`` wins); a path with ``~`` expanded.

    Raises:
        ConfigError: a named value that cannot be resolved (see :func:`resolve_weights`).
    """
    if not is_named_weights(value) or Path(value).expanduser().is_file():
        return str(Path(value).expanduser()), format  # auto / none stay as they are
    resolved = resolve_weights(value, backbone, download=download)
    return str(resolved.path), resolved.format if format == "auto" else format


def load_named_weights(
    module: nn.Module, backbone: str, value: str, *, format: str = "auto", download: bool = True
) -> ResolvedWeights:
    """Resolve ``value`` (see :func:`resolve_weights`) and load it into ``module``, strictly.

    Registry and torchvision files go through :func:`~ftsweep.backbones.load_backbone_weights`
    (``format="auto"`` uses the entry's format); ``timm`` files as :func:`timm_state` reads them
    (the classifier left out, every other key required: ``timm.models.load_pretrained`` with
    ``num_classes=0`` loads non-strictly and says nothing of missing keys).
    """
    from ftsweep.backbones.checkpoint import load_backbone_weights

    resolved = resolve_weights(value, backbone, download=download)
    if resolved.via_timm:
        from ftsweep.backbones.checkpoint import _misfit

        state = timm_state(resolved.path, backbone)
        error = _misfit(module.state_dict(), state, str(resolved.path), "timm", "timm", backbone)
        if error is not None:  # timm's own loader, told num_classes=0, loads such a file non-strictly
            raise error
        module.load_state_dict(state, strict=True)
        return resolved
    load_backbone_weights(module, resolved.path, format=resolved.format if format == "auto" else format)
    return resolved
