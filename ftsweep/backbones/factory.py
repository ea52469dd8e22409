"""Backbone factory: ``small_cnn``, torchvision ResNets (``torchvision.<name>``) and any timm model.

Every backbone maps (B, 3, H, W) images to (B, ``num_features``) penultimate features.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
from torch import nn

from ftsweep.backbones.small_cnn import SmallCNN

__all__ = [
    "BACKBONES",
    "classifier_keys",
    "create_backbone",
    "list_backbones",
    "meta_backbone",
    "register_backbone",
]

TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

BACKBONES: dict[str, Callable[..., nn.Module]] = {}


def register_backbone(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder under ``name``; a duplicate raises ``KeyError``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in BACKBONES:
            raise KeyError(f"backbone {name!r} is already registered")
        BACKBONES[name] = fn
        return fn

    return deco


@register_backbone("small_cnn")
def _small_cnn(**kwargs: object) -> nn.Module:
    return SmallCNN(**kwargs)  # type: ignore[arg-type]


def _torchvision_resnet(arch: str) -> Callable[..., nn.Module]:
    def build(**kwargs: object) -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, arch)(weights=None, **kwargs)
        model.num_features = model.fc.in_features
        model.fc = nn.Identity()
        return model

    return build


for _arch in TORCHVISION_RESNETS:
    register_backbone(f"torchvision.{_arch}")(_torchvision_resnet(_arch))


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _is_timm_model(name: str) -> bool:
    """An architecture timm builds (``resnet50``) or an architecture with one of its pre-trained
    tags (``resnet50.a1_in1k``); ``timm.is_model`` alone would accept any tag."""
    import timm

    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        return False
    return not tag or name in set(timm.list_pretrained(f"{arch}.*"))


def is_known_backbone(name: str) -> bool:
    """True for a registered name or any model timm can build, tagged names included
    (``resnet50.a1_in1k``, ``vit_base_patch16_224.mae``; ``timm.`` prefix optional)."""
    if name in BACKBONES:
        return True
    return _is_timm_model(name.removeprefix("timm."))


def list_backbones(include_timm: bool = False) -> list[str]:
    """Registered names (and, on request, every timm model name)."""
    names = sorted(BACKBONES)
    return names + (_timm_names() if include_timm else [])


def create_backbone(name: str, **kwargs: object) -> nn.Module:
    """Build a headless backbone with ``num_features`` and ``backbone_name`` attributes; never
    downloads weights.

    Args:
        name: ``small_cnn``, ``torchvision.resnet50`` …, or a timm model name, optionally with a
            pre-trained tag (``resnet50.a1_in1k``; ``timm.`` prefix optional).
        kwargs: passed to the builder (unset values should be dropped by the caller).
    """
    if name in BACKBONES:
        model = BACKBONES[name](**kwargs)
    else:
        import timm

        timm_name = name.removeprefix("timm.")
        if not _is_timm_model(timm_name):
            raise KeyError(
                f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))} or a timm model name "
                "(with a pre-trained tag such as resnet50.a1_in1k where wanted)"
            )
        model = timm.create_model(timm_name, pretrained=False, num_classes=0, **kwargs)
    model.backbone_name = name  # what named weights (torchvision:…, timm) are resolved against
    return model


@lru_cache(maxsize=16)
def meta_backbone(name: str) -> nn.Module:
    """``create_backbone(name)`` on the ``meta`` device (shapes, no weights), built once per
    process: what the checks before Ray starts read (a checkpoint's keys and shapes, a fixed
    input size). Shared between callers: read it, never train or change it."""
    with torch.device("meta"):
        return create_backbone(name)


@lru_cache(maxsize=16)
def classifier_keys(name: str) -> frozenset[str]:
    """The state-dict keys of a timm backbone's classifier: what the model with a head has and
    the headless backbone lacks (both built on the ``meta`` device). A checkpoint saved
    from the timm model (``model.state_dict()``) carries them, under names no fixed pattern
    knows (LeViT's ``head.bn``, RepViT's ``head.head``, Inception-ResNet's ``classif``). Empty
    for ftsweep's registered backbones."""
    if name in BACKBONES:
        return frozenset()
    import timm

    with torch.device("meta"):
        full = timm.create_model(name.removeprefix("timm."), pretrained=False, num_classes=10)
    return frozenset(full.state_dict()) - frozenset(meta_backbone(name).state_dict())
