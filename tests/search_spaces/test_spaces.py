"""Every search-space function: keys are fields of its method's config, all values in bounds."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import search_spaces
from ftsweep.config.spec import _domain_values
from trainables import TRAINABLES


def _functions():
    for mod_info in pkgutil.iter_modules(search_spaces.__path__):
        if mod_info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"search_spaces.{mod_info.name}")
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__ and not name.startswith("_"):
                yield pytest.param(mod_info.name, fn, id=f"{mod_info.name}:{name}")


@pytest.mark.parametrize(("method", "fn"), list(_functions()))
def test_space_keys_and_bounds(method: str, fn) -> None:
    assert method in TRAINABLES, f"search_spaces.{method} has no Trainable of that name"
    cls = TRAINABLES[method].config_cls
    space = fn()
    assert space, "empty space"
    fields = set(cls.field_names())
    assert all(k in fields for k in space), sorted(set(space) - fields)
    base = {"pretrained": "none"}
    base.update(getattr(TRAINABLES[method], "smoke_config", {}))
    for key, value in space.items():
        values = _domain_values(value)
        for v in values if values is not None else [value]:
            cls.from_dict({**{k: x for k, x in base.items() if k in fields and k != key}, key: v})
