"""Name → Trainable class registry; a duplicate name raises."""

from __future__ import annotations

from collections.abc import Callable

from ray import tune

TRAINABLES: dict[str, type[tune.Trainable]] = {}


def register_trainable(name: str) -> Callable[[type[tune.Trainable]], type[tune.Trainable]]:
    """Class decorator adding a Trainable under ``name`` (sets ``cls.method_name``)."""

    def deco(cls: type[tune.Trainable]) -> type[tune.Trainable]:
        if name in TRAINABLES:
            raise KeyError(f"trainable {name!r} is already registered by {TRAINABLES[name].__module__}")
        cls.method_name = name
        TRAINABLES[name] = cls
        return cls

    return deco
