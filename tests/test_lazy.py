"""Heavy libraries load only when used: the driver's validation stays quick before Ray starts."""

from __future__ import annotations

import subprocess
import sys

from ftsweep._lazy import LazyModule


def test_lazy_module_imports_on_first_attribute() -> None:
    code = (
        "import sys\n"
        "from ftsweep._lazy import LazyModule\n"
        "m = LazyModule('json.decoder')\n"
        "assert 'json.decoder' not in sys.modules\n"
        "assert m.JSONDecodeError.__name__ == 'JSONDecodeError'\n"
        "assert 'json.decoder' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "loaded=False" in repr(LazyModule("json"))


def test_importing_the_trainables_leaves_heavy_libraries_unloaded() -> None:
    code = (
        "import sys, trainables, ftsweep.config.spec\n"
        "heavy = [m for m in ('torchvision', 'sklearn', 'ot', 'scipy.optimize', 'timm', 'mlflow')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""
