"""Sweep specs: YAML → validated :class:`SweepSpec` → one :class:`Job` per (method, dataset).

Everything a spec can get wrong is checked here, before Ray starts and before any MLflow run
exists: unknown keys, methods, datasets, backbones, searchers and schedulers; malformed YAML;
config keys a method does not take; out-of-range values, for fixed values and for every value of
every search-space axis (explicit grids, ``tune.choice`` categories, the bounds of ranges).
"""

from __future__ import annotations

import copy
import importlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ftsweep.config.errors import ConfigError

__all__ = [
    "SMOKE_OVERRIDES",
    "Job",
    "MethodSpec",
    "SweepSpec",
    "load_layout",
    "load_spec",
    "parse_spec",
    "resolve_search_space",
]

SEARCHERS = ("grid", "random", "optuna")
SCHEDULERS = ("fifo", "asha")
TOP_KEYS = {
    "name", "description", "experiment", "method", "config", "search_space", "methods", "dataset",
    "datasets", "backbone", "pretrained", "dataset_config", "seeds", "searcher", "scheduler",
    "num_samples", "resources", "metric", "mode", "smoke", "table", "max_concurrent_trials",
    "checkpoint_frequency", "asha", "stop",
}  # fmt: skip
METHOD_KEYS = {"method", "config", "search_space", "name"}
TABLE_KEYS = {"rows", "cols", "metric", "baseline", "layout", "select_by"}

#: what ``--smoke`` does to any spec before the spec's own ``smoke:`` overrides
SMOKE_OVERRIDES: dict[str, Any] = {
    "epochs": 2,
    "max_train_batches": 2,
    "max_eval_batches": 2,
    "batch_size": 32,
    "eval_batch_size": 128,
    "device": "cpu",
    "num_workers": 0,
    "warmup_epochs": 0,
    "milestones": [],
    "checkpoint_format": "auto",
    "image_size": None,
}


@dataclass(frozen=True)
class MethodSpec:
    """One method of a spec: its registry key, fixed config and search space."""

    method: str
    config: dict[str, Any]
    search_space: dict[str, Any] | str | None
    label: str


@dataclass(frozen=True)
class Job:
    """One ``tune.Tuner`` run: a method on a dataset.

    Attributes:
        name: ``<label>-<dataset>`` (the Tune experiment folder).
        fixed: fixed config values (merged: top-level, dataset, method, smoke).
        space: the search space (plain ``tune`` dict, seeds not included).
    """

    name: str
    method: str
    label: str
    dataset: str
    fixed: dict[str, Any]
    space: dict[str, Any]
    source: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see docs/design.md for the YAML shape)."""

    name: str
    description: str
    experiment: str
    methods: tuple[MethodSpec, ...]
    datasets: tuple[str, ...]
    backbone: str
    pretrained: str
    config: dict[str, Any]
    dataset_config: dict[str, dict[str, Any]]
    seeds: tuple[int, ...]
    searcher: str
    scheduler: str
    num_samples: int
    resources: dict[str, float]
    metric: str
    mode: str
    table: dict[str, Any]
    max_concurrent_trials: int | None
    checkpoint_frequency: int
    asha: dict[str, Any]
    stop: dict[str, float]
    smoke: bool
    smoke_overrides: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def jobs(self) -> list[Job]:
        """One job per (method, dataset); every config point already validated."""
        return _jobs(self)


def _require(cond: bool, fld: str, value: object, allowed: str) -> None:
    if not cond:
        raise ConfigError(fld, value, allowed)


def _mapping(raw: Mapping[str, Any], key: str, default: Any) -> dict:
    value = raw.get(key, default)
    if value is None:
        value = default
    _require(isinstance(value, Mapping), key, value, "must be a mapping")
    return dict(value)


def load_layout(layout: Any, field: str = "table.layout") -> Callable[..., Any]:
    """The paper-layout function ``layout`` names (``analysis.<paper>:<table>``).

    Raises:
        ConfigError: (reported as ``field``) the string is not ``module:function`` or names
            nothing callable.
    """
    allowed = "must name a table function 'analysis.<paper>:<table>', e.g. analysis.coin:table4"
    if not isinstance(layout, str) or layout.count(":") != 1:
        raise ConfigError(field, layout, allowed)
    mod_name, fn_name = layout.split(":")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(field, layout, allowed) from None
    if not callable(fn):
        raise ConfigError(field, layout, allowed)
    return fn


def load_spec(path: str | Path, *, smoke: bool = False) -> SweepSpec:
    """Read and validate a YAML spec (``ConfigError`` on anything wrong)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("spec", str(path), "must be an existing YAML file")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("spec", str(path), f"malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    spec = parse_spec(raw, smoke=smoke, path=str(p))
    spec.jobs()  # validates every config point
    return spec


def parse_spec(raw: Any, *, smoke: bool = False, path: str | None = None) -> SweepSpec:
    """Validate the spec's structure (``jobs()`` validates the config points)."""
    from ftsweep.data import DATASETS
    from trainables import TRAINABLES

    _require(isinstance(raw, Mapping), "spec", type(raw).__name__, "must be a YAML mapping")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(
            unknown[0], raw[unknown[0]], f"unknown spec key; allowed: {', '.join(sorted(TOP_KEYS))}"
        )
    name = raw.get("name")
    _require(
        isinstance(name, str) and name.strip() != "" and "/" not in name,
        "name",
        name,
        "must be a non-empty string without '/'",
    )

    if ("method" in raw) == ("methods" in raw):
        raise ConfigError("method", raw.get("method"), "give exactly one of `method:` or `methods:`")
    if "methods" in raw:
        entries = raw["methods"]
        _require(isinstance(entries, list) and entries, "methods", entries, "must be a non-empty list")
        _require(
            "search_space" not in raw,
            "search_space",
            raw.get("search_space"),
            "with `methods:`, give search_space inside each method",
        )
    else:
        entries = [{"method": raw["method"], "search_space": raw.get("search_space")}]
    methods = []
    for i, entry in enumerate(entries):
        where = f"methods[{i}]" if "methods" in raw else "method"
        if isinstance(entry, str):
            entry = {"method": entry}
        _require(isinstance(entry, Mapping), where, entry, "must be a method name or a mapping")
        bad = sorted(set(entry) - METHOD_KEYS)
        if bad:
            raise ConfigError(
                f"{where}.{bad[0]}", entry[bad[0]], f"allowed: {', '.join(sorted(METHOD_KEYS))}"
            )
        m = entry.get("method")
        _require(
            m in TRAINABLES,
            f"{where}.method" if "methods" in raw else "method",
            m,
            f"must be one of {', '.join(sorted(TRAINABLES))}",
        )
        cfg = _mapping(entry, "config", {}) if "methods" in raw else {}
        space = entry.get("search_space")
        _require(
            space is None or isinstance(space, Mapping | str),
            f"{where}.search_space",
            space,
            "must be a mapping of explicit values or 'search_spaces.<module>:<function>'",
        )
        methods.append(
            MethodSpec(m, cfg, dict(space) if isinstance(space, Mapping) else space, entry.get("name") or m)
        )
    labels = [m.label for m in methods]
    _require(
        len(set(labels)) == len(labels),
        "methods",
        labels,
        "method entries must be unique (give `name:` to repeat a method)",
    )

    datasets = raw.get("datasets", [raw["dataset"]] if "dataset" in raw else ["digits"])
    if isinstance(datasets, str):
        datasets = [datasets]
    _require(isinstance(datasets, list) and datasets, "datasets", datasets, "must be a non-empty list")
    for d in datasets:
        _require(d in DATASETS, "dataset", d, f"must be one of {', '.join(sorted(DATASETS))}")

    from ftsweep.backbones import is_known_backbone

    backbone = raw.get("backbone", "small_cnn")
    _require(
        isinstance(backbone, str) and is_known_backbone(backbone),
        "backbone",
        backbone,
        "must be small_cnn, torchvision.resnet18/34/50/101/152 or a timm model name",
    )
    pretrained = str(raw.get("pretrained", "auto"))

    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = [seeds]
    _require(
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds),
        "seeds",
        seeds,
        "must be a non-empty list of non-negative integers",
    )
    _require(len(set(seeds)) == len(seeds), "seeds", seeds, "must not repeat")
    searcher = raw.get("searcher", "grid")
    _require(searcher in SEARCHERS, "searcher", searcher, f"must be one of {', '.join(SEARCHERS)}")
    scheduler = raw.get("scheduler", "fifo")
    _require(scheduler in SCHEDULERS, "scheduler", scheduler, f"must be one of {', '.join(SCHEDULERS)}")
    num_samples = raw.get("num_samples", 1)
    _require(
        isinstance(num_samples, int) and not isinstance(num_samples, bool) and num_samples >= 1,
        "num_samples",
        num_samples,
        "must be an integer >= 1",
    )
    resources = _mapping(raw, "resources", {"cpu": 1, "gpu": 0})
    for k, v in resources.items():
        _require(k in ("cpu", "gpu"), f"resources.{k}", v, "allowed keys: cpu, gpu")
        _require(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
            f"resources.{k}",
            v,
            "must be a number >= 0 (fractions allowed)",
        )
    _require(resources.get("cpu", 1) > 0, "resources.cpu", resources.get("cpu"), "must be > 0")
    mode = raw.get("mode", "max")
    _require(mode in ("max", "min"), "mode", mode, "must be max or min")
    metric = raw.get("metric", "best/val/acc")
    _require(
        isinstance(metric, str)
        and (metric.startswith("val/") or metric.startswith("best/val") or metric.startswith("train/")),
        "metric",
        metric,
        "must be a validation (or training) metric such as best/val/acc — test metrics never select",
    )
    table = _mapping(raw, "table", {})
    bad = sorted(set(table) - TABLE_KEYS)
    if bad:
        raise ConfigError(f"table.{bad[0]}", table[bad[0]], f"allowed: {', '.join(sorted(TABLE_KEYS))}")
    if "layout" in table:
        load_layout(table["layout"])
    mct = raw.get("max_concurrent_trials")
    _require(
        mct is None or (isinstance(mct, int) and mct >= 1),
        "max_concurrent_trials",
        mct,
        "must be an integer >= 1",
    )
    ckf = raw.get("checkpoint_frequency", 0)
    _require(
        isinstance(ckf, int) and ckf >= 0,
        "checkpoint_frequency",
        ckf,
        "must be an integer >= 0 (0 = only at the end)",
    )
    config = _mapping(raw, "config", {})
    dataset_config = _mapping(raw, "dataset_config", {})
    for d, v in dataset_config.items():
        _require(
            d in datasets,
            f"dataset_config.{d}",
            v,
            f"must name one of the spec's datasets: {', '.join(datasets)}",
        )
        _require(isinstance(v, Mapping), f"dataset_config.{d}", v, "must be a mapping")
    smoke_cfg = _mapping(raw, "smoke", {})
    asha = _mapping(raw, "asha", {})
    stop = _mapping(raw, "stop", {})
    for k, v in stop.items():
        _require(
            isinstance(v, int | float) and not isinstance(v, bool),
            f"stop.{k}",
            v,
            "must be a number (Tune stops a trial once the reported value reaches it)",
        )

    if smoke:
        datasets = [smoke_cfg.pop("dataset", "digits")]
        dataset_config = {}
        backbone = smoke_cfg.pop("backbone", "small_cnn")
        pretrained = str(smoke_cfg.pop("pretrained", "auto"))
        seeds = seeds[:1]
        num_samples = min(num_samples, 2)
        resources = {"cpu": 1, "gpu": 0}
        config = {**config, **SMOKE_OVERRIDES, **smoke_cfg}
        methods = [
            MethodSpec(
                m.method,
                {k: v for k, v in m.config.items() if k not in config},
                _shrink(m.search_space),
                m.label,
            )
            for m in methods
        ]

    return SweepSpec(
        name=name,
        description=str(raw.get("description", "")),
        experiment=str(raw.get("experiment", name)) + ("-smoke" if smoke else ""),
        methods=tuple(methods),
        datasets=tuple(datasets),
        backbone=backbone,
        pretrained=pretrained,
        config=config,
        dataset_config={k: dict(v) for k, v in dataset_config.items()},
        seeds=tuple(seeds),
        searcher=searcher,
        scheduler=scheduler,
        num_samples=num_samples,
        resources={k: float(v) for k, v in resources.items()},
        metric=metric,
        mode=mode,
        table=table,
        max_concurrent_trials=mct,
        checkpoint_frequency=ckf,
        asha=asha,
        stop={k: float(v) for k, v in stop.items()},
        smoke=smoke,
        smoke_overrides=smoke_cfg if smoke else {},
        path=path,
    )


def _shrink(space: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
    """--smoke: keep the first two values of every explicit grid axis (function spaces are
    shrunk after they are resolved)."""
    if isinstance(space, Mapping):
        return {k: (v[:2] if isinstance(v, list) else v) for k, v in space.items()}
    return space


def resolve_search_space(space: dict[str, Any] | str | None, where: str) -> dict[str, Any]:
    """Turn a spec's search space into a plain ``tune`` dict.

    Explicit lists become ``tune.grid_search``; scalars stay fixed; a string
    ``search_spaces.<module>:<function>`` is imported and called.
    """
    from ray import tune

    if space is None:
        return {}
    if isinstance(space, str):
        mod_name, _, fn_name = space.partition(":")
        if not mod_name.startswith("search_spaces.") or not fn_name:
            raise ConfigError(where, space, "must look like 'search_spaces.<module>:<function>'")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError:
            raise ConfigError(where, space, f"no module {mod_name}") from None
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
        return dict(out)
    return {k: (tune.grid_search(list(v)) if isinstance(v, list) else v) for k, v in space.items()}


def _domain_values(value: Any) -> list[Any] | None:
    """The values to validate for one search-space entry (None for a fixed value)."""
    from ray.tune.search.sample import Categorical, Float, Integer

    if isinstance(value, Mapping) and set(value) == {"grid_search"}:
        return list(value["grid_search"])
    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, Float | Integer):
        return (
            [value.lower, value.upper - (1 if isinstance(value, Integer) else 0)]
            if isinstance(value, Integer)
            else [value.lower, value.upper]
        )
    return None


def _shrink_resolved(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune
    from ray.tune.search.sample import Categorical

    out = {}
    for k, v in space.items():
        if isinstance(v, Mapping) and set(v) == {"grid_search"}:
            out[k] = tune.grid_search(list(v["grid_search"])[:2])
        elif isinstance(v, Categorical):
            out[k] = tune.choice(list(v.categories)[:2])
        else:
            out[k] = v
    return out


def _jobs(spec: SweepSpec) -> list[Job]:
    from trainables import TRAINABLES

    jobs = []
    for i, m in enumerate(spec.methods):
        where = f"methods[{i}]" if len(spec.methods) > 1 or m.config else "method"
        space = resolve_search_space(m.search_space, f"{where}.search_space")
        if spec.smoke:
            space = _shrink_resolved(space)
        cls = TRAINABLES[m.method]
        for d in spec.datasets:
            fixed = {"dataset": d, "backbone": spec.backbone, "pretrained": spec.pretrained}
            source = {k: "spec" for k in fixed}
            for layer, prefix in (
                (spec.config, "config"),
                (spec.dataset_config.get(d, {}), f"dataset_config.{d}"),
                (m.config, f"{where}.config"),
            ):
                _apply(fixed, layer, source, prefix)
            job_space = space
            if spec.smoke:
                # the method's smoke defaults fill in only what the space does not sweep; the
                # global smoke values and the spec's `smoke:` replace a same-key axis (epochs)
                method_smoke = {k: v for k, v in getattr(cls, "smoke_config", {}).items() if k not in space}
                for layer in (method_smoke, SMOKE_OVERRIDES, spec.smoke_overrides):
                    _apply(fixed, layer, source, "smoke")
                replaced = {*SMOKE_OVERRIDES, *spec.smoke_overrides}
                job_space = {k: v for k, v in space.items() if k not in replaced}
            names = cls.config_cls.field_names()
            fixed = {k: v for k, v in fixed.items() if k in names or k not in SMOKE_OVERRIDES}
            for k in job_space:
                source[k] = f"{where}.search_space.{k}"
            if "seed" in job_space or "seed" in fixed:
                raise ConfigError(
                    source.get("seed", "seed"),
                    job_space.get("seed", fixed.get("seed")),
                    "seeds are given by the spec's `seeds:` list",
                )
            _validate_points(cls.config_cls, fixed, job_space, source)
            jobs.append(Job(f"{m.label}-{d}", m.method, m.label, d, fixed, job_space, source))
    return jobs


def _shown(value: Any) -> Any:
    """A search-space value as the user wrote it (a grid's list, not Tune's wrapper)."""
    values = _domain_values(value)
    return values if values is not None else value


_EXCLUSIVE = ({"labels_per_class", "num_labels"},)


def _apply(fixed: dict[str, Any], layer: Mapping[str, Any], source: dict[str, str], prefix: str) -> None:
    """Override ``fixed`` with ``layer``; setting one of a mutually exclusive group drops the others."""
    for k, v in layer.items():
        for group in _EXCLUSIVE:
            if k in group:
                for other in group - {k}:
                    fixed.pop(other, None)
        fixed[k] = copy.deepcopy(v)
        source[k] = f"{prefix}.{k}"


def _validate_points(
    config_cls: type, fixed: dict[str, Any], space: dict[str, Any], source: dict[str, str]
) -> None:
    """Build the config for every combination of the explicit values of every axis."""
    names = set(config_cls.field_names())
    for k in list(fixed) + list(space):
        if k not in names:
            import difflib

            close = difflib.get_close_matches(k, sorted(names), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                source.get(k, k),
                _shown(fixed[k] if k in fixed else space.get(k)),
                f"not a field of {config_cls.__name__}; {hint}allowed: {', '.join(sorted(names))}",
            )
    axes = []
    for k, v in space.items():
        values = _domain_values(v)
        axes.append((k, values if values is not None else [v]))
    # every value of every axis at least once, with the other axes at their first value,
    # plus the full product when it is small
    points: list[dict[str, Any]] = [{}]
    if axes:
        product_size = 1
        for _, vals in axes:
            product_size *= max(1, len(vals))
        if product_size <= 256:
            points = [
                dict(zip([k for k, _ in axes], combo, strict=True))
                for combo in itertools.product(*[vals for _, vals in axes])
            ]
        else:
            base = {k: vals[0] for k, vals in axes}
            points = [{**base, k: val} for k, vals in axes for val in vals]
    for point in points:
        try:
            config_cls.from_dict({**fixed, **point})
        except ConfigError as e:
            raise ConfigError(source.get(e.field, e.field), e.value, e.allowed) from None
