"""The method registry: one :class:`MethodRecord` per method, the only list of what exists.

The library defines the record and the registry; the application layer (``trainables/<m>.py``)
builds each method's record from its parts — the config class (``ftsweep.methods.<m>``), the
Ray Tune Trainable (``trainables.<m>``), the search-space module (``search_spaces.<m>``) and the
paper layouts (``analysis.<paper>``) — and ``pyproject.toml`` lists the records, one entry point
each, under ``[project.entry-points."ftsweep.methods"]``. That table is the one place where the
methods are written down; :func:`methods` loads it (Python's public plugin mechanism, so nothing
under ``ftsweep/`` imports the application packages by name). A duplicate name raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType, ModuleType
from typing import Any

from ftsweep.config.base import BaseConfig

__all__ = ["ENTRY_POINT_GROUP", "MethodRecord", "Registry", "layout_name", "methods"]

ENTRY_POINT_GROUP = "ftsweep.methods"


def layout_name(fn: Callable[..., Any]) -> str:
    """How a spec names a paper layout: ``analysis.<paper>:<table>``."""
    return f"{fn.__module__}:{fn.__qualname__}"


@dataclass(frozen=True)
class MethodRecord:
    """Everything one method is made of.

    Attributes:
        name: the spec's ``method:`` value.
        config_cls: the frozen config dataclass — the one home of the method's defaults.
        trainable: the Ray Tune Trainable class that wires the method for a trial.
        search_space: the module of the paper's grids (``search_spaces.<m>``), if any; a spec
            names its functions as ``search_spaces.<m>:<function>``.
        layouts: the paper-table functions (``analysis.<paper>:<table>``) of the method's runs.
        smoke: what ``--smoke`` sets for this method beyond the global smoke values (only where
            the method cannot run otherwise, e.g. COIN's α so that both stages run in 2 epochs).
    """

    name: str
    config_cls: type[BaseConfig]
    trainable: type
    search_space: ModuleType | None = None
    layouts: tuple[Callable[..., Any], ...] = ()
    smoke: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "smoke", MappingProxyType(dict(self.smoke)))


class Registry(Mapping[str, MethodRecord]):
    """Name → :class:`MethodRecord`; registering a name twice raises ``KeyError``."""

    def __init__(self, records: Iterator[MethodRecord] | tuple[MethodRecord, ...] = ()) -> None:
        self._records: dict[str, MethodRecord] = {}
        for record in records:
            self.register(record)

    def register(self, record: MethodRecord) -> MethodRecord:
        if record.name in self._records:
            other = self._records[record.name].trainable.__module__
            raise KeyError(f"method {record.name!r} is already registered by {other}")
        self._records[record.name] = record
        return record

    def __getitem__(self, name: str) -> MethodRecord:
        return self._records[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def layouts(self) -> dict[str, Callable[..., Any]]:
        """Every registered paper layout by its spec name (a layout shared by methods once)."""
        return {layout_name(fn): fn for r in self._records.values() for fn in r.layouts}

    def search_spaces(self) -> dict[str, ModuleType]:
        """Every registered search-space module by its import name."""
        return {r.search_space.__name__: r.search_space for r in self._records.values() if r.search_space}


_REGISTRY: Registry | None = None


def methods() -> Registry:
    """The registry of the installed methods (the ``ftsweep.methods`` entry points), loaded once.

    Raises:
        KeyError: two entry points register the same name.
        ValueError: an entry point's name differs from its record's.
    """
    global _REGISTRY
    if _REGISTRY is None:
        registry = Registry()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            record = ep.load()
            if not isinstance(record, MethodRecord) or record.name != ep.name:
                raise ValueError(
                    f"entry point {ep.name} = {ep.value} must be a MethodRecord named {ep.name!r}"
                )
            registry.register(record)
        _REGISTRY = registry
    return _REGISTRY
