"""Sweep versions: every plain ``ftsweep run`` of a spec is a new version, never an overwrite.

A spec's results live under ``<results>/<name>/`` (``<name>-smoke`` for ``--smoke``), one folder
per version: ``v1/``, ``v2/`` … Each holds Tune's experiment (``tune/``), the tables of that
version and ``version.json``: the version number, the hash of the spec as run (with its
overrides and the smoke flag), the command line, and its state — ``running`` (a driver holds it
or was killed holding it), ``interrupted`` (stopped by a signal), ``finished`` (every trial ended;
``failed`` counts the trials that failed). A new version's folder is created with ``mkdir``, so
two drivers started at once on the same spec get different versions; drivers in different
results folders on one store are kept apart by the claim of ``ftsweep.runner.new_version``. MLflow runs carry the tag
``sweep_version``; runs from before versions existed count as version 0.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftsweep.config import ConfigError

__all__ = ["Version", "create_version", "latest_version", "list_versions", "spec_hash"]


def spec_hash(raw: Any, *, smoke: bool, overrides: tuple[str, ...] = ()) -> str:
    """A stable hash of what a version runs: the spec mapping, ``--smoke`` and ``--set``."""
    text = json.dumps(
        {"spec": raw, "smoke": smoke, "overrides": list(overrides)}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Version:
    """One version of a sweep (see the module docstring)."""

    number: int
    path: Path
    spec_hash: str
    state: str = "running"
    command: str = ""
    created: float = field(default_factory=time.time)
    trials: int = 0
    failed: int = 0
    interrupted_by: str = ""
    #: the MLflow store its trials log to (resolved); "" in versions from before it was kept
    tracking_uri: str = ""

    @property
    def experiment_dir(self) -> Path:
        return self.path / "tune"

    def save(self) -> None:
        meta = {k: v for k, v in asdict(self).items() if k != "path"}
        tmp = self.path / ".version.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, self.path / "version.json")

    @classmethod
    def load(cls, path: Path) -> Version:
        meta = json.loads((path / "version.json").read_text())
        return cls(path=path, **meta)

    @property
    def unfinished(self) -> bool:
        return self.state != "finished"

    def holder(self) -> int | None:
        """The pid of a live driver running this version, if any (it holds ``driver.lock``)."""
        lock = self.path / "driver.lock"
        if not lock.exists():
            return None
        with open(lock, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                text = f.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(f, fcntl.LOCK_UN)
        return None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold this version for the running driver (released when the process ends, however)."""
        with open(self.path / "driver.lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def list_versions(root: Path) -> list[Version]:
    """The versions under ``root`` (a spec's results folder), oldest first."""
    out = []
    for p in root.glob("v*") if root.is_dir() else ():
        if p.name[1:].isdigit() and (p / "version.json").is_file():
            out.append(Version.load(p))
    return sorted(out, key=lambda v: v.number)


def latest_version(root: Path) -> Version | None:
    versions = list_versions(root)
    return versions[-1] if versions else None


def create_version(
    root: Path, digest: str, command: str = "", tracking_uri: str = "", after: int = 0
) -> Version:
    """A new version folder under ``root``, numbered after the highest existing one and after
    ``after`` (the highest version of the spec its MLflow store already holds: another results
    folder, or one since removed, logged to the same store under those numbers)."""
    root.mkdir(parents=True, exist_ok=True)
    n = max(max((v.number for v in list_versions(root)), default=0), after) + 1
    while True:
        path = root / f"v{n}"
        try:
            path.mkdir()
            break
        except FileExistsError:  # another driver took this number
            n += 1
    version = Version(number=n, path=path, spec_hash=digest, command=command, tracking_uri=tracking_uri)
    version.save()
    return version


def choose_version(
    root: Path, digest: str, *, resume: bool, new: bool, retry_failed: bool, spec: str
) -> Version | None:
    """The version a ``ftsweep run`` resumes, or None for a new one (created later, by
    :func:`create_version`, once nothing can refuse the run any more). Writes nothing.

    Raises:
        ConfigError: ``--resume`` with nothing to resume or after the spec changed; a plain run
            while the latest version is unfinished (without ``--new``).
    """
    latest = latest_version(root)
    pid = latest.holder() if latest is not None else None
    if pid is not None:
        raise ConfigError(
            "spec",
            spec,
            f"v{latest.number} of this sweep is running now (driver pid {pid}); wait for it or stop it",
        )
    if resume:
        if latest is None:
            raise ConfigError("--resume", spec, f"no version of this sweep under {root} to resume")
        if latest.spec_hash != digest:
            raise ConfigError(
                "--resume",
                spec,
                f"the spec (or its --set/--smoke) changed since v{latest.number} was started "
                f"(hash {latest.spec_hash}, now {digest}); run it as a new version with --new",
            )
        if not latest.unfinished and not (retry_failed and latest.failed):
            raise ConfigError(
                "--resume",
                spec,
                f"v{latest.number} is finished with no failed trial; a plain run starts a new version",
            )
        if not (latest.experiment_dir / "tuner.pkl").exists():
            raise ConfigError(
                "--resume",
                spec,
                f"v{latest.number} has no Tune experiment state to restore ({latest.experiment_dir})",
            )
        return latest
    if latest is not None and latest.unfinished and not new:
        raise ConfigError(
            "spec",
            spec,
            f"the latest version v{latest.number} of this sweep is "
            f"{'unfinished (its driver died)' if latest.state == 'running' else latest.state}; resume it with "
            f"`ftsweep run {spec} --resume` or start a new version with --new",
        )
    return None
