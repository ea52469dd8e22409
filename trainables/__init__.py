"""Ray Tune class Trainables, one module per fine-tuning method.

``TRAINABLES`` maps a method name (the ``method:`` of a sweep spec) to its Trainable class.
Every non-underscore module of this package is imported here and registers itself with
``@register_trainable(name)``; a duplicate name raises ``KeyError``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ftsweep.methods.base import resolve_trial_config
from trainables._base import FineTuneTrainable
from trainables._registry import TRAINABLES, register_trainable

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_"):
        _record = getattr(importlib.import_module(f"{__name__}.{_mod}"), "METHOD", None)
        if _record is not None:  # transitional: moved methods register through ftsweep.registry
            TRAINABLES[_record.name] = _record.trainable

__all__ = ["TRAINABLES", "FineTuneTrainable", "register_trainable", "resolve_trial_config"]
