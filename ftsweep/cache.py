"""Build-once file cache, safe under concurrent trials.

``build_once(path, build)`` returns ``path``, building it with ``build(tmp_path)`` when missing.
An exclusive ``fcntl`` lock beside the file makes concurrent callers (Ray trials on one node,
or on nodes sharing a POSIX file system) wait for a single builder; the artefact is written to a
temporary name and moved into place with ``os.replace``, so a crash never leaves a half-written
file under ``path``. A failed build leaves ``<path>.failed`` with the reason: later callers raise
:class:`CachedBuildError` with it instead of rebuilding, until ``retry_failed=True``.
"""

from __future__ import annotations

import fcntl
import os
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["CachedBuildError", "build_once"]


class CachedBuildError(RuntimeError):
    """The artefact's build failed (now or in an earlier attempt)."""


def build_once(path: str | Path, build: Callable[[Path], None], *, retry_failed: bool = False) -> Path:
    """Return ``path``, building it exactly once across processes.

    Args:
        path: where the artefact lives.
        build: writes the artefact to the temporary path it is given.
        retry_failed: rebuild even if an earlier build failed.

    Raises:
        CachedBuildError: this or an earlier build failed (the reason is in the message).
    """
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    failed = path.with_name(path.name + ".failed")
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                return path
            if failed.exists() and not retry_failed:
                raise CachedBuildError(f"building {path} failed earlier: {failed.read_text().strip()}")
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                build(tmp)
                if not tmp.exists():
                    raise CachedBuildError(f"the builder of {path} wrote nothing")
                os.replace(tmp, path)
                failed.unlink(missing_ok=True)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                if isinstance(exc, CachedBuildError):
                    raise
                raise CachedBuildError(f"building {path} failed: {type(exc).__name__}: {exc}") from exc
            finally:
                if tmp.exists():
                    tmp.unlink()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path
