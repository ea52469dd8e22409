"""Search spaces: a spec's ``search_space`` → a plain ``tune`` dict, and the validation of every
point of it against the method's config dataclass.

A spec gives a search space as a mapping of explicit values (lists become grid axes, scalars stay
fixed) or as ``search_spaces.<module>:<function>``, a function of a search-space module that a
method's registry record names (``ftsweep.registry``). Ranges (``tune.uniform`` …) are validated
at their bounds, categories and grids at every value.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping
from dataclasses import fields
from types import ModuleType
from typing import Any

from ftsweep.config.errors import ConfigError

__all__ = [
    "count_trials",
    "domain_values",
    "field_default",
    "in_axis",
    "is_grid",
    "resolve_points",
    "resolve_search_space",
    "search_axes",
    "shown",
    "shrink_space",
    "validate_points",
]

#: the full product of the explicit axes is validated up to this many points; beyond it, every
#: value of every axis once (the other axes at their first value)
FULL_PRODUCT_LIMIT = 256


def is_grid(value: Any) -> bool:
    """Whether ``value`` is Tune's ``grid_search`` wrapper."""
    return isinstance(value, Mapping) and set(value) == {"grid_search"}


def resolve_search_space(
    space: Mapping[str, Any] | str | None, where: str, modules: Mapping[str, ModuleType]
) -> dict[str, Any]:
    """A spec's search space as a plain ``tune`` dict.

    Args:
        space: explicit values (lists become ``tune.grid_search``), or
            ``search_spaces.<module>:<function>``.
        where: the spec field, for errors.
        modules: the registered search-space modules by import name.
    """
    from ray import tune

    if space is None:
        return {}
    if not isinstance(space, str):
        if not isinstance(space, Mapping):
            raise ConfigError(
                where,
                space,
                "must be a mapping of config fields to values, or 'search_spaces.<module>:<function>'",
            )
        return _checked_axes(
            {k: (tune.grid_search(list(v)) if isinstance(v, list) else v) for k, v in space.items()}, where
        )
    mod_name, _, fn_name = space.partition(":")
    if not mod_name.startswith("search_spaces.") or not fn_name:
        raise ConfigError(where, space, "must look like 'search_spaces.<module>:<function>'")
    mod = modules.get(mod_name)
    if mod is None:
        raise ConfigError(
            where,
            space,
            f"no module {mod_name} among the methods' search spaces: {', '.join(sorted(modules))}",
        )
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        public = [
            n
            for n in dir(mod)
            if not n.startswith("_")
            and callable(getattr(mod, n))
            and getattr(getattr(mod, n), "__module__", "") == mod.__name__
        ]
        raise ConfigError(
            where, space, f"{mod_name} has no function {fn_name!r}; it has: {', '.join(public)}"
        )
    out = fn()
    if not isinstance(out, Mapping):
        raise ConfigError(where, space, "the function must return a mapping")
    return _checked_axes(dict(out), where)


def _checked_axes(space: dict[str, Any], where: str) -> dict[str, Any]:
    """``space`` once its keys are field names and every grid axis a non-empty list of distinct
    values (an empty axis has no trial; a repeated value runs the same trials twice)."""
    for key, value in space.items():
        if not isinstance(key, str):
            raise ConfigError(where, key, "its keys must be config field names (strings)")
        if not is_grid(value):
            continue
        values = value["grid_search"]
        if not isinstance(values, list | tuple) or not values:
            raise ConfigError(f"{where}.{key}", values, "a grid axis must be a non-empty list of values")
        repeated = [v for i, v in enumerate(values) if v in list(values)[:i]]
        if repeated:
            raise ConfigError(
                f"{where}.{key}", list(values), f"a grid axis must not repeat a value ({repeated[0]!r})"
            )
    return space


def domain_values(value: Any) -> list[Any] | None:
    """The values to validate for one search-space entry (None for a fixed value): a grid's
    values, a choice's categories, a range's bounds (an integer range's upper bound is
    exclusive)."""
    from ray.tune.search.sample import Categorical, Float, Integer

    if is_grid(value):
        return list(value["grid_search"])
    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, Integer):
        return [value.lower, value.upper - 1]
    if isinstance(value, Float):
        return [value.lower, value.upper]
    return None


def shown(value: Any) -> Any:
    """A search-space value as the user wrote it (a grid's list, not Tune's wrapper)."""
    values = domain_values(value)
    return values if values is not None else value


def shrink_space(space: Mapping[str, Any], keep: int = 2) -> dict[str, Any]:
    """The first ``keep`` values of every grid axis and choice (``--smoke``)."""
    from ray import tune
    from ray.tune.search.sample import Categorical

    out = {}
    for k, v in space.items():
        if is_grid(v):
            out[k] = tune.grid_search(list(v["grid_search"])[:keep])
        elif isinstance(v, Categorical):
            out[k] = tune.choice(list(v.categories)[:keep])
        elif isinstance(v, list):
            out[k] = v[:keep]
        else:
            out[k] = v
    return out


def count_trials(space: Mapping[str, Any], searcher: str, seeds: int, num_samples: int) -> int:
    """How many trials a job runs: grid / random — every grid cell × ``num_samples`` × seeds;
    optuna (with search axes) — ``num_samples`` suggestions × seeds, at most every cell once
    when the axes are all grid axes (``ftsweep.optuna_search`` runs no cell twice)."""
    axes = search_axes(space).values()
    cells = 1
    for v in space.values():
        if is_grid(v):
            cells *= len(v["grid_search"])
    if searcher == "optuna" and axes:
        finite = all(is_grid(v) for v in axes)
        return (min(num_samples, cells) if finite else num_samples) * seeds
    return cells * num_samples * seeds


def validate_points(
    config_cls: type, fixed: Mapping[str, Any], space: Mapping[str, Any], source: Mapping[str, str]
) -> None:
    """Build ``config_cls`` for the points of ``fixed`` × ``space``: the full product of the
    explicit axes when it has at most :data:`FULL_PRODUCT_LIMIT` points, else every value of
    every axis once. Errors name the spec field the value came from (``source``)."""
    names = set(config_cls.field_names())
    for k in [*fixed, *space]:
        if k not in names:
            close = difflib.get_close_matches(k, sorted(names), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                source.get(k, k),
                shown(fixed[k] if k in fixed else space.get(k)),
                f"not a field of {config_cls.__name__}; {hint}allowed: {', '.join(sorted(names))}",
            )
    axes = [(k, vals if (vals := domain_values(v)) is not None else [v]) for k, v in space.items()]
    points: list[dict[str, Any]] = [{}]
    if axes:
        size = 1
        for _, vals in axes:
            size *= max(1, len(vals))
        if size <= FULL_PRODUCT_LIMIT:
            keys = [k for k, _ in axes]
            points = [
                dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
            ]
        else:
            base = {k: vals[0] for k, vals in axes}
            points = [{**base, k: val} for k, vals in axes for val in vals]
    for point in points:
        try:
            config_cls.from_dict({**fixed, **point})
        except ConfigError as e:
            raise ConfigError(source.get(e.field, e.field), e.value, e.allowed) from None


def field_default(config_cls: type, key: str) -> Any:
    """The default of ``config_cls``'s field ``key`` (``KeyError`` if it has no such field)."""
    for f in fields(config_cls):
        if f.name == key:
            return f.default
    raise KeyError(key)


def search_axes(space: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``space`` a searcher varies (grid axes and ``tune`` domains)."""
    from ray.tune.search.sample import Domain

    return {k: v for k, v in space.items() if is_grid(v) or isinstance(v, Domain)}


def in_axis(value: Any, axis: Any) -> bool:
    """Whether ``value`` lies in one search-space entry (a grid's or choice's values, a range)."""
    from ray.tune.search.sample import Categorical, Float, Integer

    if is_grid(axis):
        return value in list(axis["grid_search"])
    if isinstance(axis, Categorical):
        return value in list(axis.categories)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(axis, Integer):
        return float(value).is_integer() and axis.lower <= value < axis.upper
    if isinstance(axis, Float):
        return axis.lower <= value <= axis.upper
    return False


def resolve_points(
    points: Any, space: Mapping[str, Any], config_cls: type, where: str = "points_to_evaluate"
) -> tuple[dict[str, Any], ...]:
    """The configurations a job's searcher tries first (spec key ``points_to_evaluate``).

    ``points`` is ``default`` — one point: every searched parameter at its config dataclass
    default (the paper's setting) — or a list of mappings, each giving a value for every
    searched parameter of ``space``, inside its axis (a grid's or choice's values, a range's
    bounds). ``None``: no points.

    Raises:
        ConfigError: (reported as ``where``, ``where[i]`` or ``where[i].<key>``) not ``default``
            or a list of mappings; a key that is not searched; a searched parameter missing; a
            value (or a default) outside its axis.
    """
    if points is None:
        return ()
    axes = search_axes(space)
    if not axes:
        raise ConfigError(where, points, "needs a search space with at least one searched parameter")
    if points == "default":
        rows, label = [{k: field_default(config_cls, k) for k in axes}], "the default"
    else:
        if not isinstance(points, list) or not points or not all(isinstance(p, Mapping) for p in points):
            raise ConfigError(
                where, points, "must be `default` or a non-empty list of mappings {parameter: value}"
            )
        rows, label = [dict(p) for p in points], "the value"
    out = []
    for i, point in enumerate(rows):
        at = where if points == "default" else f"{where}[{i}]"
        for k in point:
            if k not in axes:
                raise ConfigError(
                    f"{at}.{k}", point[k], f"not a searched parameter; searched: {', '.join(axes)}"
                )
        missing = [k for k in axes if k not in point]
        if missing:
            raise ConfigError(at, point, f"must give every searched parameter; missing: {', '.join(missing)}")
        for k, v in point.items():
            if not in_axis(v, axes[k]):
                raise ConfigError(
                    f"{at}.{k}", v, f"{label} must lie in the search space of {k}: {shown(axes[k])}"
                )
        out.append(point)
    return tuple(out)
