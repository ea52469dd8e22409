"""Sweep specs: YAML → validated :class:`SweepSpec`, its :class:`Job` per (method, dataset)
expanded and validated once, at load.

Three steps, three modules: this one parses the spec's structure; ``ftsweep.config.space``
resolves and validates search spaces; ``ftsweep.config.smoke`` says what ``--smoke`` changes.
Everything a spec can get wrong is checked before Ray starts and before any MLflow run exists:
unknown keys, methods, datasets, backbones, searchers and schedulers; malformed YAML; config
keys a method does not take; out-of-range values, for fixed values and for every value of every
search-space axis. A value the spec does not set keeps its method's default (its config
dataclass is its only home); the spec adds only what it states.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ftsweep.config.errors import ConfigError
from ftsweep.config.smoke import SMOKE_OVERRIDES, SmokeSettings, smoke_layers
from ftsweep.config.space import (
    field_default,
    in_axis,
    is_grid,
    resolve_points,
    resolve_search_space,
    search_axes,
    shown,
    shrink_space,
    validate_points,
)

__all__ = [
    "SMOKE_OVERRIDES",
    "Job",
    "MethodSpec",
    "SweepSpec",
    "apply_overrides",
    "load_layout",
    "load_spec",
    "metric_direction",
    "parse_spec",
]

SEARCHERS = ("grid", "random", "optuna")
#: ``optuna: {sampler: ...}`` (``ftsweep.optuna_search``); the first is the default
OPTUNA_SAMPLERS = ("tpe", "gp")
#: the options of ``optuna:``
OPTUNA_OPTIONS = ("sampler", "n_startup_trials")
SCHEDULERS = ("fifo", "asha", "hyperband")
#: the options of ``asha:`` / ``hyperband:`` (Tune's scheduler arguments; times in sched/epoch)
SCHEDULER_OPTIONS = {
    "asha": ("grace_period", "reduction_factor", "max_t", "brackets"),
    "hyperband": ("reduction_factor", "max_t"),
}
TOP_KEYS = {
    "name", "description", "experiment", "method", "config", "search_space", "methods", "dataset",
    "datasets", "backbone", "pretrained", "dataset_config", "seeds", "searcher", "scheduler",
    "num_samples", "resources", "metric", "mode", "smoke", "table", "max_concurrent_trials",
    "checkpoint_frequency", "asha", "hyperband", "stop", "max_failures", "points_to_evaluate",
    "optuna",
}  # fmt: skip
METHOD_KEYS = {"method", "config", "dataset_config", "search_space", "name", "points_to_evaluate"}
TABLE_KEYS = {"rows", "cols", "metric", "baseline", "layout", "select_by"}
#: a spec's ``name`` names its results folder and its MLflow experiment
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
#: the longest spec ``name`` (it names the version folders; file names end at 255 bytes)
MAX_NAME = 128
#: the longest method label (``methods[].name``; it starts the trials' folder names)
MAX_LABEL = 100
#: Tune's own result keys a ``stop:`` may name (every metric ftsweep reports has a '/')
TUNE_RESULT_KEYS = ("training_iteration", "time_total_s", "time_this_iter_s")
#: ``stop:`` keys that only rise during a trial
COUNTERS = ("training_iteration", "time_total_s", "sched/epoch")
#: config keys of which a spec layer sets one and thereby drops the others
EXCLUSIVE = ({"labels_per_class", "num_labels"},)


@dataclass(frozen=True)
class MethodSpec:
    """One method of a spec: its registry key, fixed config (``dataset_config``: per dataset,
    after ``config``) and search space, and the points its searcher tries first (None: the
    spec's ``points_to_evaluate``)."""

    method: str
    config: dict[str, Any]
    search_space: dict[str, Any] | str | None
    label: str
    points_to_evaluate: Any = None
    dataset_config: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One (method, dataset) of a sweep.

    Attributes:
        name: ``<label>-<dataset>`` (the Tune experiment folder).
        fixed: the config values the spec sets (top-level, dataset, method, smoke layers).
        space: the search space (plain ``tune`` dict, seeds not included).
        source: the spec field each value came from (for errors).
        config_cls: the method's config dataclass (the defaults of what ``fixed`` leaves out).
        points: the configurations of ``space`` its searcher tries first (``points_to_evaluate``).
    """

    name: str
    method: str
    label: str
    dataset: str
    fixed: dict[str, Any]
    space: dict[str, Any]
    source: dict[str, str] = field(default_factory=dict)
    config_cls: type | None = None
    points: tuple[dict[str, Any], ...] = ()

    def value(self, key: str) -> Any:
        """The job's fixed value of ``key``: the spec's, else the config dataclass's default."""
        if key in self.fixed:
            return self.fixed[key]
        if self.config_cls is None:
            raise KeyError(key)
        return field_default(self.config_cls, key)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see docs/design.md for the YAML shape).

    ``datasets``, ``backbone`` and ``pretrained`` are None where the spec leaves them to the
    methods' config defaults.
    """

    name: str
    description: str
    experiment: str
    methods: tuple[MethodSpec, ...]
    datasets: tuple[str, ...] | None
    backbone: str | None
    pretrained: str | None
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
    max_failures: int
    asha: dict[str, Any]
    hyperband: dict[str, Any]
    stop: dict[str, tuple[str, float]]
    smoke: bool
    points_to_evaluate: Any = None
    optuna: dict[str, Any] = field(default_factory=dict)  # parse fills sampler, n_startup_trials
    smoke_overrides: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    expanded: tuple[Job, ...] = field(default=(), repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    overrides: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        """The spec's results folder name (``<name>-smoke`` for ``--smoke``)."""
        return self.name + ("-smoke" if self.smoke else "")

    def jobs(self) -> list[Job]:
        """One job per (method, dataset), every config point validated — expanded once, when
        the spec was parsed."""
        return list(self.expanded)


def _require(cond: bool, fld: str, value: object, allowed: str) -> None:
    if not cond:
        raise ConfigError(fld, value, allowed)


def _string_keys(node: Any, where: str) -> None:
    """Every mapping key of the spec, at any depth, is a string (YAML reads ``1:`` or ``true:``
    as a number or a bool, which names no field)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            _require(isinstance(key, str), here, value, f"the key {key!r} must be a string (a field name)")
            _string_keys(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _string_keys(value, f"{where}[{i}]")


def _mapping(raw: Mapping[str, Any], key: str, default: Any) -> dict:
    value = raw.get(key, default)
    if value is None:
        value = default
    _require(isinstance(value, Mapping), key, value, "must be a mapping")
    return dict(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _registry() -> Any:
    from ftsweep.registry import methods

    return methods()


def load_layout(layout: Any, field: str = "table.layout") -> Callable[..., Any]:
    """The registered paper-layout function ``layout`` names (``analysis.<paper>:<table>``).

    Raises:
        ConfigError: (reported as ``field``) no method registers that layout.
    """
    layouts = _registry().layouts()
    if not isinstance(layout, str) or layout not in layouts:
        raise ConfigError(
            field,
            layout,
            "must name a table function 'analysis.<paper>:<table>' of a method; one of: "
            + ", ".join(sorted(layouts)),
        )
    return layouts[layout]


def _layout_of_the_methods(layout: Any, names: Sequence[str], registry: Any) -> None:
    """``table.layout`` names a registered layout of one of the spec's methods: another method's
    layout reads columns (COIN's ``alpha``) these runs do not have, and fails once they end."""
    from ftsweep.registry import layout_name

    load_layout(layout)
    own = {layout_name(fn) for n in names for fn in registry[n].layouts}
    if layout not in own:
        owners = sorted(n for n, r in registry.items() if layout in {layout_name(fn) for fn in r.layouts})
        raise ConfigError(
            "table.layout",
            layout,
            f"is a layout of {', '.join(owners)}, which this spec does not run (it runs "
            f"{', '.join(dict.fromkeys(names))}); its layouts: {', '.join(sorted(own)) or 'none'}",
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives one key twice (PyYAML keeps the last
    silently: a second ``config:`` replaced the first, every value of it)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice in one mapping (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1}); merge them",
                    key_node.start_mark,
                )
            if isinstance(key, Hashable):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """``text`` as YAML (safe types), a key repeated in a mapping refused (``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 — a SafeLoader subclass


def load_spec(path: str | Path, *, smoke: bool = False, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read and validate a YAML spec, jobs included, after applying ``overrides``
    (``--set KEY=VALUE``, see :func:`apply_overrides`); ``ConfigError`` on anything wrong."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("spec", str(path), "must be an existing YAML file")
    try:
        raw = read_yaml(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("spec", str(path), f"malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            "spec",
            str(path),
            f"must be UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start} is not)",
        ) from None
    if overrides:
        _require(isinstance(raw, Mapping), "spec", type(raw).__name__, "must be a YAML mapping")
        raw = apply_overrides(raw, overrides)
    spec = parse_spec(raw, smoke=smoke, path=str(p))
    _check_overrides_reach(spec, overrides)
    return replace(spec, overrides=tuple(overrides))


def _check_overrides_reach(spec: SweepSpec, overrides: Sequence[str]) -> None:
    """A ``--set`` of a shared layer (``config.X``, ``dataset_config.D.X``) reaches every job it
    is for: a later fixed layer (a method's own ``config:``, ``dataset_config``, the ``--smoke``
    values) that sets X to another value for some job would leave the override without effect
    there. A search of X by one method overrides a shared value by design (the layering) and is
    not counted."""
    for item in overrides:
        parts = item.partition("=")[0].split(".")
        if parts[0] == "config" and len(parts) == 2:
            dataset, field = None, parts[1]
        elif parts[0] == "dataset_config" and len(parts) == 3:
            dataset, field = parts[1], parts[2]
        else:
            continue
        expected, value = ".".join(parts), yaml.safe_load(item.partition("=")[2])
        for job in spec.jobs():
            if (dataset is not None and job.dataset != dataset) or field not in job.config_cls.field_names():
                continue
            src = job.source.get(field)
            if src == expected or (src or "").endswith(f".search_space.{field}"):
                continue
            if field in job.fixed and job.fixed[field] == value:
                continue  # the later layer was set to the same value (``--set`` of both)
            partner = [job.source[o] for g in EXCLUSIVE if field in g for o in g - {field} if o in job.source]
            by = src or (partner[0] if partner else "a later layer")
            raise ConfigError(
                "--set",
                item,
                f"does not reach job {job.name}: {by} sets its {field} after {expected}; set that "
                "instead (or as well)",
            )


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """The spec with each ``KEY=VALUE`` applied: ``KEY`` dotted (``config.epochs``,
    ``methods.0.config.lr``), ``VALUE`` read as YAML (``5``, ``[0, 1]``, ``{lr: 0.1}``).
    Missing mappings on the way are created; the result is validated like any spec."""
    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError("--set", item, "must be KEY=VALUE with a dotted KEY, e.g. config.epochs=5")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError("--set", item, f"VALUE must be YAML: {getattr(e, 'problem', e)}") from None
        node: Any = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                _require(
                    part.isdigit() and int(part) < len(node), "--set", item, f"{where}: no such list index"
                )
                node = node[int(part)]
            elif isinstance(node, dict):
                _require(
                    part in node or not parts[i + 1].isdigit(),
                    "--set",
                    item,
                    f"{where} is not in the spec, so {where}.{parts[i + 1]} names no list item"
                    + (
                        " (this spec has a single method:; set config.… instead)"
                        if where == "methods"
                        else ""
                    ),
                )
                node = node.setdefault(part, {})
            else:
                raise ConfigError("--set", item, f"{where} is a value, not a mapping or a list")
        last = parts[-1]
        if isinstance(node, list):
            _require(last.isdigit() and int(last) < len(node), "--set", item, f"{key}: no such list index")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError("--set", item, f"{'.'.join(parts[:-1])} is a value, not a mapping or a list")
    return out


def parse_spec(raw: Any, *, smoke: bool = False, path: str | None = None) -> SweepSpec:
    """Validate a spec mapping and expand its jobs."""
    registry = _registry()
    _require(isinstance(raw, Mapping), "spec", type(raw).__name__, "must be a YAML mapping")
    _string_keys(raw, "")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(
            unknown[0], raw[unknown[0]], f"unknown spec key; allowed: {', '.join(sorted(TOP_KEYS))}"
        )
    name = raw.get("name")
    _require(
        isinstance(name, str)
        and SAFE_NAME.fullmatch(name) is not None
        and name not in (".", "..")
        and len(name) <= MAX_NAME,
        "name",
        name,
        f"must be a slug of letters, digits, '-', '_' and '.' (not '.' or '..', at most {MAX_NAME} "
        "characters): it names folders",
    )
    methods = _parse_methods(raw, registry)
    datasets, backbone, pretrained = _parse_data(raw)
    settings = _parse_settings(raw)
    table = _mapping(raw, "table", {})
    bad = sorted(set(table) - TABLE_KEYS)
    if bad:
        raise ConfigError(f"table.{bad[0]}", table[bad[0]], f"allowed: {', '.join(sorted(TABLE_KEYS))}")
    if "layout" in table:
        _layout_of_the_methods(table["layout"], [m.method for m in methods], registry)
    dataset_config = _mapping(raw, "dataset_config", {})
    layers = [("dataset_config", dataset_config)] + [
        (f"methods[{i}].dataset_config", m.dataset_config) for i, m in enumerate(methods)
    ]
    for where, per_dataset in layers:
        for d, v in per_dataset.items():
            _require(
                datasets is not None and d in datasets,
                f"{where}.{d}",
                v,
                f"must name one of the spec's datasets: {', '.join(datasets or ())}",
            )
            _require(isinstance(v, Mapping), f"{where}.{d}", v, "must be a mapping")
    description = raw.get("description", "")
    _require(
        isinstance(description, str),
        "description",
        description,
        "must be a string (the experiment's description)",
    )
    spec = SweepSpec(
        name=name,
        description=description,
        experiment=_experiment(raw, name) + ("-smoke" if smoke else ""),
        methods=tuple(methods),
        datasets=datasets,
        backbone=backbone,
        pretrained=pretrained,
        config=_mapping(raw, "config", {}),
        dataset_config={k: dict(v) for k, v in dataset_config.items()},
        table=table,
        smoke=smoke,
        path=path,
        raw=copy.deepcopy(dict(raw)),
        **settings,
    )
    if smoke:
        spec = _smoke_spec(spec, SmokeSettings.parse(_mapping(raw, "smoke", {})))
    spec = replace(spec, expanded=tuple(expand_jobs(spec, registry)))
    _check_points(spec)
    _check_repeats(spec)
    _check_table(spec)
    return spec


#: run columns a table may group by beside the config fields (``ftsweep.runs.load_runs``)
TABLE_COLUMNS = ("method", "dataset", "job", "seed")


def _check_table(spec: SweepSpec) -> None:
    """``table:`` names what the runs will have: rows / cols among the run columns and the jobs'
    config fields (``stage1.<field>`` where a job has ``stage1``), a baseline among the method
    labels when rows are methods, and ``select_by`` a validation metric like ``metric``. (These
    are read only once the sweep has run, where a typo would leave no table; ``metric`` and
    ``select_by`` against what the methods log: ``ftsweep.runner.check_jobs``.)"""
    table = spec.table
    for key in ("metric", "baseline"):
        value = table.get(key)
        _require(
            value is None or (isinstance(value, str) and value != ""),
            f"table.{key}",
            value,
            "must be one name"
            + (" (a metric the runs log, e.g. test/acc)" if key == "metric" else " (a method label)"),
        )
    fields = {f for job in spec.jobs() for f in job.config_cls.field_names()}
    if "stage1" in fields:  # a stage-1 column is a field of the target-pretraining config
        from ftsweep.pretrain import TargetPretrainConfig

        fields |= {f"stage1.{f}" for f in TargetPretrainConfig.field_names()}
    for key in ("rows", "cols"):
        value = table.get(key)
        names = [value] if isinstance(value, str) else value
        if value is None:
            continue
        _require(
            isinstance(names, list) and names, f"table.{key}", value, "must be a name or a list of names"
        )
        for n in names:
            _require(
                isinstance(n, str) and (n in TABLE_COLUMNS or n in fields),
                f"table.{key}",
                n,
                f"must be one of {', '.join(TABLE_COLUMNS)} or a config field of the spec's methods"
                + (
                    " (stage1.<field>: a field of the target-pretraining config)"
                    if "stage1" in fields
                    else ""
                ),
            )
    axes = {
        key: _names(table.get(key, default)) for key, default in (("rows", "method"), ("cols", "dataset"))
    }
    for key, names in axes.items():
        twice = [n for i, n in enumerate(names) if n in names[:i]]
        _require(not twice, f"table.{key}", table.get(key), f"names {twice[:1]} twice: each column once")
    both = [n for n in axes["cols"] if n in axes["rows"]]
    _require(
        not both,
        "table.cols",
        table.get("cols", "dataset"),
        f"shares {both[:1]} with table.rows ({table.get('rows', 'method')}): a column is either a row or a column",
    )
    labels = [m.label for m in spec.methods]
    named = {*axes["rows"], *axes["cols"]}
    parts = {"method": labels, "dataset": list(dict.fromkeys(job.dataset for job in spec.jobs()))}
    for part, values in parts.items():  # the rule of ftsweep.tables.summarize, before Ray starts
        _require(
            part in named or "job" in named or len(values) < 2,
            "table.rows" if part == "method" else "table.cols",
            table.get("rows", "method") if part == "method" else table.get("cols", "dataset"),
            f"leaves {part} out of rows and cols, so a cell would hold the runs of the spec's "
            f"{len(values)} {part}s ({', '.join(values)}) and show one of them unnamed: put {part} "
            "in the rows or cols (each cell is one method on one dataset)",
        )
    baseline = table.get("baseline")
    if baseline is not None:
        _require(
            axes["rows"] == ["method"],
            "table.baseline",
            baseline,
            f"needs rows: method (it names the method row the others are compared with); rows are "
            f"{table.get('rows')}",
        )
        _require(
            baseline in labels, "table.baseline", baseline, f"must be one of the methods: {', '.join(labels)}"
        )
    select_by = table.get("select_by")
    if select_by is not None:
        _require_selection_metric(select_by, "table.select_by")


def _names(value: Any) -> list[Any]:
    """A ``table.rows`` / ``table.cols`` value as a list of names."""
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else [value]


def _check_points(spec: SweepSpec) -> None:
    """``points_to_evaluate`` fits the searcher: no space mixing grid axes with random domains
    (under grid / random search), and no more points than ``num_samples`` where points take
    the place of draws (random domains, optuna)."""
    for job in spec.jobs():
        if not job.points:
            continue
        axes = search_axes(job.space)
        grid = [k for k, v in axes.items() if is_grid(v)]
        domains = len(grid) < len(axes)
        if spec.searcher != "optuna" and grid and domains:
            raise ConfigError(
                "points_to_evaluate",
                list(job.points),
                f"job {job.name} mixes grid axes ({', '.join(grid)}) with random domains: give grid "
                "axes only, or use searcher: optuna",
            )
        if (spec.searcher == "optuna" or domains) and len(job.points) > spec.num_samples:
            raise ConfigError(
                "points_to_evaluate",
                list(job.points),
                f"{len(job.points)} points but num_samples is {spec.num_samples}: the points are the "
                "first of the job's samples",
            )


def _check_repeats(spec: SweepSpec) -> None:
    """``num_samples`` > 1 draws again only from random domains (or as Optuna suggestions): a job
    with grid axes alone, or none, would run each of its configurations that many times with the
    same seeds — identical trials, pooled twice into a table."""
    if spec.num_samples == 1:
        return
    for job in spec.jobs():
        axes = search_axes(job.space)
        if any(not is_grid(v) for v in axes.values()) or (spec.searcher == "optuna" and axes):
            continue
        raise ConfigError(
            "num_samples",
            spec.num_samples,
            f"job {job.name} has {'only grid axes' if axes else 'no search axis'}: each of its "
            f"configurations would run {spec.num_samples} times with the same seeds; use 1 (give "
            "more seeds: with seeds:), or random domains / searcher: optuna",
        )


def _require_selection_metric(value: Any, field: str) -> None:
    """A metric that may select configurations (``metric``, ``table.select_by``): validation or
    training, never test."""
    _require(
        isinstance(value, str) and value.startswith(("val/", "best/val", "train/")),
        field,
        value,
        "must be a validation (or training) metric such as best/val/acc — test metrics never select",
    )


#: the loss terms the methods log as ``train/<term>`` (``FineTuner.loss_terms``; stage 1's ``ssl``
#: and ``l2_init``): each falls as it improves
LOSS_TERMS = ("ce", "supcon", "con", "ce_mixed", "unsup", "scln", "nt_xent", "ce_target", "ce_source",
              "soft_ce_source", "ssl", "l2_init")  # fmt: skip
#: terms the methods log that are not losses (FixMatch/UDA's confident fraction, Mean Teacher's
#: ramp-up weight, Core-tuning's count of generated samples): no direction
NOT_LOSS_TERMS = ("mask", "weight_u", "generated")
#: the metrics whose name ends so are reported in percent
PERCENT = ("acc", "mpa")
#: the direction of the metrics whose name ends so (``val/acc``, ``train/supcon`` …)
BETTER = {"acc": "max", "mpa": "max", "loss": "min", **dict.fromkeys(LOSS_TERMS, "min")}


def metric_direction(metric: str) -> str | None:
    """The way ``metric`` improves where its name says (:data:`BETTER`), else None."""
    return BETTER.get(metric.rsplit("/", 1)[-1])


def _require_direction(metric: str, mode: str) -> None:
    """``mode`` goes the way ``metric`` improves, where its name says (:func:`metric_direction`): the other
    way ASHA and Optuna keep the worst configurations."""
    better = metric_direction(metric)
    _require(
        better is None or better == mode,
        "mode",
        mode,
        f"must be {better} for metric {metric} (the other way the search keeps the worst configurations)",
    )


def _experiment(raw: Mapping[str, Any], name: str) -> str:
    """``experiment:`` (the MLflow experiment), a non-empty string; default the spec's name."""
    experiment = raw.get("experiment", name)
    _require(
        isinstance(experiment, str) and experiment.strip() != "",
        "experiment",
        experiment,
        "must be a non-empty string (the MLflow experiment's name)",
    )
    return experiment


def _parse_methods(raw: Mapping[str, Any], registry: Mapping[str, Any]) -> list[MethodSpec]:
    if ("method" in raw) == ("methods" in raw):
        raise ConfigError("method", raw.get("method"), "give exactly one of `method:` or `methods:`")
    listed = "methods" in raw
    if listed:
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
    out = []
    for i, entry in enumerate(entries):
        where = f"methods[{i}]" if listed else "method"
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
            isinstance(m, str) and m in registry,
            f"{where}.method" if listed else "method",
            m,
            f"must be one of {', '.join(sorted(registry))}",
        )
        space = entry.get("search_space")
        _require(
            space is None or isinstance(space, Mapping | str),
            f"{where}.search_space",
            space,
            "must be a mapping of explicit values or 'search_spaces.<module>:<function>'",
        )
        cfg = _mapping(entry, "config", {}) if listed else {}
        per_dataset = (entry.get("dataset_config") or {}) if listed else {}
        _require(
            isinstance(per_dataset, Mapping),
            f"{where}.dataset_config",
            per_dataset,
            "must be a mapping of dataset → config values",
        )
        for d, v in per_dataset.items():
            _require(isinstance(v, Mapping), f"{where}.dataset_config.{d}", v, "must be a mapping")
        points = copy.deepcopy(entry.get("points_to_evaluate")) if listed else None
        space = dict(space) if isinstance(space, Mapping) else space
        label = entry.get("name") or m
        _require(
            isinstance(label, str) and 0 < len(label) <= MAX_LABEL and label.isprintable(),
            f"{where}.name",
            label,
            f"must be a string of at most {MAX_LABEL} printable characters, no line break or tab (it "
            "labels the method's rows and runs)",
        )
        out.append(MethodSpec(m, cfg, space, label, points, {d: dict(v) for d, v in per_dataset.items()}))
    labels = [m.label for m in out]
    _require(
        len(set(labels)) == len(labels),
        "methods",
        labels,
        "method entries must be unique (give `name:` to repeat a method)",
    )
    return out


def _parse_data(raw: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, str | None, str | None]:
    """``datasets`` (or ``dataset``), ``backbone`` and ``pretrained``; None where not given."""
    from ftsweep.config.checks import check_backbone_name
    from ftsweep.data import is_folder_dataset, validate_dataset

    datasets = raw.get("datasets", [raw["dataset"]] if "dataset" in raw else None)
    if isinstance(datasets, str):
        datasets = [datasets]
    if datasets is not None:
        _require(isinstance(datasets, list) and datasets, "datasets", datasets, "must be a non-empty list")
        for d in datasets:
            _require(
                isinstance(d, str) and d != "",
                "dataset",
                d,
                "must be a dataset name (`ftsweep list` lists them) or an image folder's path",
            )
            validate_dataset(d, "dataset")
        # an image folder by its resolved path: ./imgs, imgs and /abs/imgs/ are one dataset
        same = [str(Path(d).expanduser().resolve()) if is_folder_dataset(d) else d for d in datasets]
        _require(
            len(set(same)) == len(same),
            "datasets",
            datasets,
            "must not repeat a dataset (an image folder counts once however its path is written)",
        )
        datasets = tuple(datasets)
    backbone = raw.get("backbone")
    if backbone is not None:
        check_backbone_name(backbone, {})
    pretrained = raw.get("pretrained")
    return datasets, backbone, None if pretrained is None else str(pretrained)


def _parse_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings: seeds, search, resources, selection metric, checkpoints, stopping."""
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = [seeds]
    _require(
        isinstance(seeds, list) and seeds and all(_int(s) and 0 <= s < 2**32 for s in seeds),
        "seeds",
        seeds,
        "must be a non-empty list of integers in [0, 2**32) (NumPy's seed range)",
    )
    _require(len(set(seeds)) == len(seeds), "seeds", seeds, "must not repeat")
    searcher = raw.get("searcher", "grid")
    _require(searcher in SEARCHERS, "searcher", searcher, f"must be one of {', '.join(SEARCHERS)}")
    scheduler = raw.get("scheduler", "fifo")
    _require(scheduler in SCHEDULERS, "scheduler", scheduler, f"must be one of {', '.join(SCHEDULERS)}")
    num_samples = raw.get("num_samples", 1)
    _require(_int(num_samples) and num_samples >= 1, "num_samples", num_samples, "must be an integer >= 1")
    resources = _mapping(raw, "resources", {"cpu": 1, "gpu": 0})
    for k, v in resources.items():
        _require(k in ("cpu", "gpu"), f"resources.{k}", v, "allowed keys: cpu, gpu")
        _require(
            _finite(v) and v >= 0,
            f"resources.{k}",
            v,
            "must be a finite number >= 0 (fractions allowed)",
        )
    _require(resources.get("cpu", 1) > 0, "resources.cpu", resources.get("cpu"), "must be > 0")
    metric = raw.get("metric", "best/val/acc")
    _require_selection_metric(metric, "metric")
    mode = raw.get("mode", metric_direction(metric) or "max")  # default: the metric's way
    _require(mode in ("max", "min"), "mode", mode, "must be max or min")
    _require_direction(metric, mode)
    mct = raw.get("max_concurrent_trials")
    _require(mct is None or (_int(mct) and mct >= 1), "max_concurrent_trials", mct, "must be an integer >= 1")
    ckf = raw.get("checkpoint_frequency", 1)
    _require(
        _int(ckf) and ckf >= 0, "checkpoint_frequency", ckf, "must be an integer >= 0 (0 = only at the end)"
    )
    max_failures = raw.get("max_failures", 2)
    _require(
        _int(max_failures) and max_failures >= 0,
        "max_failures",
        max_failures,
        "must be an integer >= 0 (restarts of a trial whose worker or node died)",
    )
    stop = _parse_stop(_mapping(raw, "stop", {}))
    asha = _scheduler_options(raw, "asha", scheduler, mct)
    if scheduler == "asha" and len(seeds) > 1 and asha.get("brackets", 1) > 1:
        raise ConfigError(
            "asha.brackets",
            asha["brackets"],
            "must be 1 with several seeds (the runner's ASHA then ranks configurations, the mean "
            "of their seeds, in one bracket)",
        )
    if scheduler == "hyperband" and len(seeds) > 1:
        raise ConfigError(
            "scheduler",
            scheduler,
            f"cannot be used with several seeds ({len(seeds)}): HyperBand ranks each seed trial alone "
            "and would stop some seeds of a configuration while keeping others; use scheduler: asha "
            "(ranks configurations by their seeds' mean) or fifo",
        )
    return {
        "seeds": tuple(seeds),
        "searcher": searcher,
        "scheduler": scheduler,
        "num_samples": num_samples,
        "resources": {k: float(v) for k, v in resources.items()},
        "metric": metric,
        "mode": mode,
        "max_concurrent_trials": mct,
        "checkpoint_frequency": ckf,
        "max_failures": max_failures,
        "asha": asha,
        "hyperband": _scheduler_options(raw, "hyperband", scheduler, mct),
        "stop": stop,
        "points_to_evaluate": copy.deepcopy(raw.get("points_to_evaluate")),
        "optuna": _optuna_options(raw, searcher),
    }


#: how a ``stop:`` threshold is met: ``above`` — the reported value has risen to it (``>=``, Tune's
#: rule for a plain number), ``below`` — it has fallen to it (``<=``)
STOP_RULES = ("above", "below")


def _parse_stop(stop: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """``stop:`` as ``{key: (rule, threshold)}`` (:data:`STOP_RULES`): ``key: x`` is
    ``{above: x}`` — except for a metric that falls as it improves (``val/loss``, ``train/ce``),
    where it would stop every trial whose first value lies above ``x``: it must say which."""
    out = {}
    for k, v in stop.items():
        if k in COUNTERS:  # they only rise from their first value: a threshold at 0 stops at once
            x = v.get("above") if isinstance(v, Mapping) and set(v) == {"above"} else v
            _require(
                _finite(x) and x > 0,
                f"stop.{k}",
                v,
                f"must be a number > 0 (stop once {k} reaches it); {k} only rises, so a threshold "
                "at or below its first value, or {below: x}, stops every trial after its first epoch",
            )
        _require(
            "/" in k or k in TUNE_RESULT_KEYS,
            f"stop.{k}",
            v,
            f"must be a reported metric (with a '/': val/loss, sched/epoch …) or one of Tune's "
            f"{', '.join(TUNE_RESULT_KEYS)}; Tune ignores an unknown key and never stops",
        )
        if isinstance(v, Mapping):
            rule = next(iter(v), None)
            _require(
                len(v) == 1 and rule in STOP_RULES and _finite(v[rule]),
                f"stop.{k}",
                dict(v),
                "must be {below: x} (stop once the value falls to x) or {above: x} (once it rises "
                "to x), x a finite number",
            )
            out[k] = (str(rule), float(v[rule]))
            continue
        _require(
            _finite(v),
            f"stop.{k}",
            v,
            "must be a number (stop once the reported value rises to it), {below: x} or {above: x}",
        )
        _require(
            metric_direction(k) != "min",
            f"stop.{k}",
            v,
            f"is a number for a metric that falls as it improves: Tune stops once the value rises to "
            f"it (>=), so every trial that starts above {v} stops after its first epoch; write "
            f"{{below: {v}}} to stop once it falls to {v}, or {{above: {v}}} to stop a trial that "
            "diverges",
        )
        out[k] = ("above", float(v))
    for k, (_, x) in out.items():
        _require(
            k.rsplit("/", 1)[-1] not in PERCENT or 1 < x <= 100,
            f"stop.{k}",
            stop[k],
            f"must be in (1, 100]: {k} is reported in percent (write 95 for 95 %; a fraction such "
            "as 0.95 stops every trial after its first epoch, a value above 100 is never reached)",
        )
        _require(
            not k.startswith("test/"),
            f"stop.{k}",
            stop[k],
            "must not be a test metric: test images never decide anything (stop on val/ or train/)",
        )
    return out


def _optuna_options(raw: Mapping[str, Any], searcher: str) -> dict[str, Any]:
    """``optuna:``: the sampler (``tpe`` or ``gp``) and its random start-up trials, read only with
    ``searcher: optuna``."""
    options = _mapping(raw, "optuna", {})
    if options and searcher != "optuna":
        raise ConfigError("optuna", options, f"is read only with searcher: optuna (this spec has {searcher})")
    for k, v in options.items():
        _require(k in OPTUNA_OPTIONS, f"optuna.{k}", v, f"allowed keys: {', '.join(OPTUNA_OPTIONS)}")
    sampler = options.get("sampler", OPTUNA_SAMPLERS[0])
    _require(
        sampler in OPTUNA_SAMPLERS, "optuna.sampler", sampler, f"must be one of {', '.join(OPTUNA_SAMPLERS)}"
    )
    n = options.get("n_startup_trials")
    _require(n is None or (_int(n) and n >= 1), "optuna.n_startup_trials", n, "must be an integer >= 1")
    return {"sampler": sampler, "n_startup_trials": n}


def _scheduler_options(raw: Mapping[str, Any], key: str, scheduler: str, mct: Any) -> dict[str, Any]:
    """``asha:`` / ``hyperband:``: Tune's arguments of that scheduler, integers >= 1 (for
    ``asha``, a ``reduction_factor`` >= 2). HyperBand pauses trials, and a paused trial still
    counts toward ``max_concurrent_trials``, so its brackets could never fill: refused together."""
    options = _mapping(raw, key, {})
    if options and scheduler != key:
        raise ConfigError(key, options, f"is read only with scheduler: {key} (this spec has {scheduler})")
    for k, v in options.items():
        allowed = SCHEDULER_OPTIONS[key]
        _require(k in allowed, f"{key}.{k}", v, f"allowed keys: {', '.join(allowed)}")
        low = 2 if k == "reduction_factor" else 1
        _require(_int(v) and v >= low, f"{key}.{k}", v, f"must be an integer >= {low}")
    if key == "hyperband" and scheduler == "hyperband" and mct is not None:
        raise ConfigError(
            "max_concurrent_trials",
            mct,
            "cannot be used with scheduler: hyperband (a paused trial still counts toward it, so "
            "HyperBand's brackets never fill); drop it or use scheduler: asha",
        )
    return options


def _smoke_spec(spec: SweepSpec, smoke: SmokeSettings) -> SweepSpec:
    """The spec-level part of ``--smoke`` (see ``ftsweep.config.smoke``); the config layers are
    applied per job by :func:`expand_jobs`."""
    return replace(
        spec,
        datasets=(smoke.dataset,) if smoke.dataset else None,
        dataset_config={},
        backbone=smoke.backbone,
        pretrained=smoke.pretrained,
        seeds=spec.seeds[:1],
        num_samples=min(spec.num_samples, 2),
        resources={"cpu": 1.0, "gpu": 0.0},
        smoke_overrides=smoke.config,
    )


def _apply(fixed: dict[str, Any], layer: Mapping[str, Any], source: dict[str, str], prefix: str) -> None:
    """Override ``fixed`` with ``layer``; setting one of a mutually exclusive group drops the others
    (a layer giving two of a group is refused: which one it means is not known)."""
    for group in EXCLUSIVE:
        both = sorted(group & set(layer))
        if len(both) > 1:
            raise ConfigError(
                f"{prefix}.{both[-1]}",
                layer[both[-1]],
                f"give one of {' or '.join(both)} in one place, not both",
            )
    for k, v in layer.items():
        for group in EXCLUSIVE:
            if k in group:
                for other in group - {k}:
                    fixed.pop(other, None)
        fixed[k] = copy.deepcopy(v)
        source[k] = f"{prefix}.{k}"


def _own_axes_not_fixed(
    own: Mapping[str, Any], space: Mapping[str, Any], source: Mapping[str, str], where: str
) -> None:
    """No value fixed for this method alone (``own``: every layer of a one-method spec, else the
    entry's own ``config:``) is also searched: the search would override it silently. A search
    axis does override the layers a spec of several methods shares with the others."""
    both = sorted(set(own) & set(space))
    if both:
        key = both[0]
        raise ConfigError(
            source[key].removeprefix("spec."),
            own[key],
            f"is also searched by {where}.search_space.{key}, which would override it: fix it "
            "or search it, not both",
        )


def _step_fields_need_step(
    cls: type,
    fixed: Mapping[str, Any],
    own: Mapping[str, Any],
    space: Mapping[str, Any],
    source: Mapping[str, str],
    where: str,
) -> None:
    """``milestones`` (non-empty) and ``gamma``, fixed for this method (``own``, as for
    :func:`_own_axes_not_fixed`) or searched, shape only ``schedule: step``; under another
    schedule they would be ignored silently."""
    if "schedule" not in cls.field_names() or "schedule" in space:
        return
    schedule = fixed.get("schedule", field_default(cls, "schedule"))
    given = [k for k in ("milestones", "gamma") if k in space or (k in own and own[k] not in ((), []))]
    if given and schedule != "step":
        key = given[0]
        raise ConfigError(
            f"{where}.search_space.{key}" if key in space else source[key].removeprefix("spec."),
            shown(space[key]) if key in space else own[key],
            f"is read only with schedule: step (this job's schedule is {schedule}); set schedule: step "
            "or drop it",
        )


def job_points(
    points: Any,
    full_space: Mapping[str, Any],
    space: Mapping[str, Any],
    config_cls: type,
    fixed: Mapping[str, Any],
    where: str = "points_to_evaluate",
) -> tuple[dict[str, Any], ...]:
    """A job's ``points_to_evaluate`` (the spec field ``where``), checked against the spec's whole
    search space (``full_space``) and the config dataclass; under ``--smoke`` (``space`` shrunk,
    some axes replaced) only the points inside ``space``, restricted to its axes."""
    out = resolve_points(points, full_space, config_cls, where)
    for point in out:
        try:
            config_cls.from_dict({**fixed, **point})
        except ConfigError as e:
            raise ConfigError(f"{where}.{e.field}", e.value, e.allowed) from None
    if space is full_space:
        return out
    axes = search_axes(space)
    kept: list[dict[str, Any]] = []
    for point in out:
        inside = {k: point[k] for k in axes}
        if all(in_axis(v, axes[k]) for k, v in inside.items()) and inside not in kept:
            kept.append(inside)
    return tuple(kept)


def _top_level_once(layer: Mapping[str, Any], prefix: str, top: Mapping[str, Any], in_shared: bool) -> None:
    """A config layer does not name a job's dataset (the job is named after the spec's
    ``dataset:`` / ``datasets:`` entry: a layer's ``dataset`` trained it on other data under that
    name), and the shared ``config:`` does not repeat a top-level ``backbone:`` / ``pretrained:``
    (which one was meant?). A method's or a dataset's own layer may set its own backbone."""
    if "dataset" in layer:
        raise ConfigError(
            f"{prefix}.dataset",
            layer["dataset"],
            "is not a config value: give the data as the spec's dataset: / datasets: (each job is "
            "named after its entry, and a config layer's dataset would replace it)",
        )
    for key in ("backbone", "pretrained"):
        if in_shared and key in layer and top.get(key) is not None:
            raise ConfigError(
                f"{prefix}.{key}",
                layer[key],
                f"is also the spec's {key}: {top[key]!r}; give it once (top level, or per method / "
                "per dataset in methods[].config / dataset_config)",
            )


def expand_jobs(spec: SweepSpec, registry: Mapping[str, Any]) -> list[Job]:
    """One job per (method, dataset), each validated at every point of its search space."""
    jobs = []
    for i, m in enumerate(spec.methods):
        where = f"methods[{i}]" if len(spec.methods) > 1 or m.config or m.dataset_config else "method"
        record = registry[m.method]
        cls = record.config_cls
        full_space = resolve_search_space(m.search_space, f"{where}.search_space", registry.search_spaces())
        space = shrink_space(full_space) if spec.smoke else full_space
        # --smoke's own backbone and checkpoint (``smoke:``'s spec-level keys) replace searched ones
        replaced_top = ("backbone", "pretrained") if spec.smoke else ()
        space = {k: v for k, v in space.items() if k not in replaced_top} if replaced_top else space
        own_space = {k: v for k, v in full_space.items() if k not in replaced_top}
        if spec.smoke:
            datasets: tuple[str, ...] = spec.datasets or (str(record.smoke.get("dataset", "digits")),)
        else:
            datasets = spec.datasets or (field_default(cls, "dataset"),)
        for d in datasets:
            fixed: dict[str, Any] = {}
            source: dict[str, str] = {}
            top = {"dataset": d, "backbone": spec.backbone, "pretrained": spec.pretrained}
            _apply(fixed, {k: v for k, v in top.items() if v is not None}, source, "spec")
            for layer, prefix in (
                (spec.config, "config"),
                (spec.dataset_config.get(d, {}), f"dataset_config.{d}"),
                (m.config, f"{where}.config"),
                (m.dataset_config.get(d, {}), f"{where}.dataset_config.{d}"),
            ):
                _top_level_once(layer, prefix, top, in_shared=prefix == "config")
                _apply(fixed, layer, source, prefix)
            own = fixed if len(spec.methods) == 1 else {**m.config, **m.dataset_config.get(d, {})}
            _own_axes_not_fixed(own, own_space, source, where)
            _step_fields_need_step(cls, fixed, own, own_space, source, where)
            job_space = space
            if spec.smoke:
                layers, replaced = smoke_layers(
                    record.smoke, spec.smoke_overrides, space, set(cls.field_names())
                )
                for layer in layers:
                    _apply(fixed, layer, source, "smoke")
                job_space = {k: v for k, v in space.items() if k not in replaced}
            for k in job_space:
                source[k] = f"{where}.search_space.{k}"
            if "seed" in job_space or "seed" in fixed:
                raise ConfigError(
                    source.get("seed", "seed"),
                    job_space.get("seed", fixed.get("seed")),
                    "seeds are given by the spec's `seeds:` list",
                )
            validate_points(cls, fixed, job_space, source)
            if m.points_to_evaluate is not None:
                raw_points, at = m.points_to_evaluate, f"methods[{i}].points_to_evaluate"  # only listed
            else:
                raw_points, at = spec.points_to_evaluate, "points_to_evaluate"
            points = job_points(raw_points, full_space, job_space, cls, fixed, at)
            jobs.append(Job(f"{m.label}-{d}", m.method, m.label, d, fixed, job_space, source, cls, points))
    return jobs
