"""Every search-space function: keys are fields of its method's config, all values in bounds."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import search_spaces
from ftsweep.config.space import domain_values
from ftsweep.registry import methods


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
    assert method in methods(), f"search_spaces.{method} has no method of that name"
    cls = methods()[method].config_cls
    space = fn()
    assert space, "empty space"
    fields = set(cls.field_names())
    assert all(k in fields for k in space), sorted(set(space) - fields)
    base = {"pretrained": "none", **methods()[method].smoke}
    axes = {k: domain_values(v) for k, v in space.items()}
    fixed = {k: v for k, v in space.items() if axes[k] is None}
    first = {k: vals[0] for k, vals in axes.items() if vals is not None}
    for key, values in axes.items():
        # each value of each axis, with the space's fixed entries and the other axes' first values
        for v in values if values is not None else [space[key]]:
            point = {**fixed, **first, key: v}
            cls.from_dict({**{k: x for k, x in base.items() if k in fields and k not in point}, **point})


@pytest.mark.parametrize(("method", "fn"), list(_functions()))
def test_a_space_never_restates_a_default(method: str, fn) -> None:
    """A fixed value of a paper grid that equals the method's default would be a second home of
    that default: the grid leaves it to the config dataclass."""
    import dataclasses

    cls = methods()[method].config_cls
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    restated = {
        k: v for k, v in fn().items() if domain_values(v) is None and k in defaults and defaults[k] == v
    }
    assert not restated, restated
