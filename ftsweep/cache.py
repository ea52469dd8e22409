"""Build-once file cache, safe under concurrent trials.

``build_once(path, build)`` returns ``path``, building it with ``build(tmp_path)`` when missing.
An exclusive ``fcntl`` lock beside the file makes concurrent callers (Ray trials on one node,
or on nodes sharing a POSIX file system) wait for a single builder; the artefact is written to a
temporary name and moved into place with ``os.replace``, so a crash never leaves a half-written
file under ``path``; the lock file is removed again when its holder is done. A failed build (an
``Exception``; not an interrupt) leaves ``<path>.failed`` with the reason: later callers raise
:class:`CachedBuildError` with it instead of rebuilding, until ``retry_failed=True``.

Every artefact shared across trials is built here: the SimCLR default checkpoint
(``ftsweep.pretrain.simclr``), the stage-1 checkpoints (``ftsweep.pretrain.stage1``) and the
feature caches (``ftsweep.selection.features``).
"""

from __future__ import annotations

import fcntl
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CachedBuildError", "build_once"]


class CachedBuildError(RuntimeError):
    """The artefact's build failed (now or in an earlier attempt)."""


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``lock_path``; the file is removed on release.

    The holder unlinks the lock file before it unlocks, so a waiter that wakes up holding the
    lock of an unlinked file (``fstat`` and ``stat`` of the path disagree) retries with the file
    now at the path: at any time only the holder of the file at the path is inside.
    """
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(lock_path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # its holder removed it: lock the file now at the path
    try:
        yield
    finally:
        try:
            lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing releases the lock


def _ready(path: Path, valid: Callable[[Path], bool] | None) -> bool:
    return path.exists() and (valid is None or valid(path))


def build_once(
    path: str | Path,
    build: Callable[[Path], None],
    *,
    retry_failed: bool = False,
    valid: Callable[[Path], bool] | None = None,
    remember_failure: bool = True,
) -> Path:
    """Return ``path``, building it exactly once across processes.

    Args:
        path: where the artefact lives.
        build: writes the artefact to the temporary path it is given.
        retry_failed: rebuild even if an earlier build failed.
        valid: tells whether an existing file at ``path`` is the artefact asked for (e.g. a key
            stored in it matches); one it rejects is rebuilt and replaced. None: any file is.
        remember_failure: record a failed build in ``<path>.failed`` and raise
            :class:`CachedBuildError`. False: leave no marker and let the build's exception
            through unchanged, so the next caller builds again.

    Only an ``Exception`` counts as a failure: a build interrupted by ``KeyboardInterrupt`` or
    ``SystemExit`` leaves neither a file nor a ``.failed`` marker, and the next caller rebuilds.

    Raises:
        CachedBuildError: this or an earlier build failed (the reason is in the message).
    """
    path = Path(path)
    if _ready(path, valid):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    failed = path.with_name(path.name + ".failed")
    with _exclusive(path.with_name(path.name + ".lock")):
        if _ready(path, valid):
            return path
        if remember_failure and failed.exists() and not retry_failed:
            raise CachedBuildError(f"building {path} failed earlier: {failed.read_text().strip()}")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            build(tmp)
            if not tmp.exists():
                raise CachedBuildError(f"the builder of {path} wrote nothing")
            os.replace(tmp, path)
            failed.unlink(missing_ok=True)
        except Exception as exc:  # not BaseException: an interrupted build is no failure
            if not remember_failure:
                raise
            failed.write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            if isinstance(exc, CachedBuildError):
                raise
            raise CachedBuildError(f"building {path} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    return path
