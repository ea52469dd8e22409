"""Backbone factory: ``small_cnn``, torchvision ResNets (``torchvision.<name>``) and any timm model.

Every backbone maps (B, 3, H, W) images to (B, ``num_features``) penultimate features.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ftsweep.backbones.small_cnn import SmallCNN

__all__ = ["BACKBONES", "create_backbone", "list_backbones", "register_backbone"]

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


def is_known_backbone(name: str) -> bool:
    """True for a registered name or any model timm can build."""
    if name in BACKBONES:
        return True
    name = name.removeprefix("timm.")
    return name in set(_timm_names())


def list_backbones(include_timm: bool = False) -> list[str]:
    """Registered names (and, on request, every timm model name)."""
    names = sorted(BACKBONES)
    return names + (_timm_names() if include_timm else [])


def create_backbone(name: str, **kwargs: object) -> nn.Module:
    """Build a headless backbone with a ``num_features`` attribute; never downloads weights.

    Args:
        name: ``small_cnn``, ``torchvision.resnet50`` …, or a timm model name (``timm.`` prefix
            optional).
        kwargs: passed to the builder (unset values should be dropped by the caller).
    """
    if name in BACKBONES:
        return BACKBONES[name](**kwargs)
    import timm

    timm_name = name.removeprefix("timm.")
    if timm_name not in set(timm.list_models()):
        raise KeyError(
            f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))} or a timm model name"
        )
    return timm.create_model(timm_name, pretrained=False, num_classes=0, **kwargs)
