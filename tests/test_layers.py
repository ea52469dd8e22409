"""The layering: ``ftsweep`` is the library and never imports the application packages; the methods
run without Ray; no private Ray API, no ``os._exit``; every method's story has one name."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = ("trainables", "search_spaces", "analysis")
LIBRARY_FILES = sorted((ROOT / "ftsweep").rglob("*.py"))
CODE_FILES = sorted(p for d in ("ftsweep", *APPLICATION, "bench") for p in (ROOT / d).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_the_application(path: Path) -> None:
    bad = [n for n in _imports(path) if n.split(".")[0] in APPLICATION]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    assert "import_module" not in path.read_text(), "no loading of modules by name in the library"


@pytest.mark.parametrize("path", CODE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_ray_api_and_no_hard_exit(path: Path) -> None:
    names = _imports(path)
    assert not [n for n in names if n.startswith("ray._private") or n.startswith("ray._raylet")]
    source = path.read_text()
    assert "os._exit" not in source
    assert "_system_config" not in source


def test_every_method_module_imports_without_ray() -> None:
    """A GPU benchmark or a notebook builds a method and calls its step with only ftsweep."""
    mods = sorted(p.stem for p in (ROOT / "ftsweep" / "methods").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module('ftsweep.methods.' + m)\n"
        "print(','.join(m for m in ('ray', 'trainables', 'search_spaces', 'analysis') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_one_name_per_method_in_every_tree() -> None:
    """Each registered method has trainables/<m>.py and a library module ftsweep/methods/<m>.py;
    a search-space module is named after a method; every paper spec is sweeps/<paper>_*.yaml."""
    from ftsweep.registry import methods

    registry = methods()
    papers = {"coin", "core_tuning", "schane", "target_pretraining", "uot_selection"}
    for name, record in registry.items():
        assert record.trainable.__module__ == f"trainables.{name}"
        library = importlib.import_module(f"ftsweep.methods.{name}")
        assert record.trainable.method_cls.__module__ == library.__name__
        # the config class is the method module's (stage 1's lives with the pretraining code)
        assert getattr(library, record.config_cls.__name__) is record.config_cls
        for fn in record.layouts:
            assert fn.__module__.split(".")[1] in papers | {name}
    for mod in (ROOT / "search_spaces").glob("*.py"):
        assert mod.stem == "__init__" or mod.stem in registry, mod.name
    for spec in (ROOT / "sweeps").glob("*.yaml"):
        assert spec.stem == "demo" or any(spec.stem.startswith(p + "_") for p in papers), spec.name
