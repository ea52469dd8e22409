"""A module imported at its first attribute access.

``ftsweep.data`` names torchvision's dataset classes and transforms in functions that run only
when data is built; importing torchvision eagerly (≈1.5 s, most of it ``torchvision.models``)
would slow every ``ftsweep`` command, including the validation that must finish before Ray starts.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """Stands for the module ``name``; the first attribute access imports it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r}, loaded={self._module is not None})"
