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

A driver holds the latest version's ``driver.lock`` from the moment it reads that version's
state (:meth:`Version.hold` with ``wait=False``, refused at once when another driver holds it)
until it runs a version of its own, so a ``--resume`` or ``--new`` cannot act on a version
another driver has just chosen to resume. ``version.json`` also keeps a hash of each job's
resolved search space (:func:`space_hashes`), so a ``search_spaces.<module>:<function>`` whose
grid changed is a changed spec for ``--resume`` although the spec's text is the same.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftsweep.config import ConfigError

__all__ = [
    "Version",
    "VersionHeld",
    "choose_version",
    "create_version",
    "hold_latest",
    "latest_version",
    "list_versions",
    "space_hashes",
    "spec_hash",
]


class VersionHeld(Exception):
    """Another live driver holds the version (:meth:`Version.hold` with ``wait=False``)."""

    def __init__(self, pid: int) -> None:
        super().__init__(f"held by driver pid {pid}")
        self.pid = pid


def spec_hash(raw: Any, *, smoke: bool, overrides: tuple[str, ...] = ()) -> str:
    """A stable hash of what a version runs: the spec mapping, ``--smoke`` and ``--set``."""
    text = json.dumps(
        {"spec": raw, "smoke": smoke, "overrides": list(overrides)}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data that is the same in every process: a Tune domain
    (``tune.loguniform`` …) by its class and attributes, never by its address."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    if hasattr(value, "__dict__"):
        return {"type": type(value).__qualname__, **{k: _plain(v) for k, v in vars(value).items()}}
    return repr(value)


def space_hashes(spaces: dict[str, Any]) -> dict[str, str]:
    """A stable hash of each job's resolved search space (job name → hash)."""
    return {
        name: hashlib.sha256(json.dumps(_plain(space), sort_keys=True).encode()).hexdigest()[:16]
        for name, space in spaces.items()
    }


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
    #: each job's resolved search space, hashed (:func:`space_hashes`); empty in versions from
    #: before it was kept
    space_hashes: dict[str, str] = field(default_factory=dict)

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

    @contextmanager
    def hold(self, *, wait: bool = True, announce: bool = True) -> Iterator[None]:
        """Hold this version for the running driver: a lock on its ``driver.lock`` (made empty
        with the version), released when the process ends, however. ``announce``: write the
        driver's pid into it (emptied again on release); :meth:`announce` does it later for a
        hold that writes nothing yet.

        Raises:
            VersionHeld: with ``wait=False``, at once where another driver holds it (its pid, or
                -1 while that driver has not announced itself).
        """
        path = self.path / "driver.lock"
        with open(path, "r+" if path.exists() else "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                f.seek(0)
                text = f.read().strip()
                raise VersionHeld(int(text) if text.isdigit() else -1) from None
            try:
                if announce:
                    self.announce()
                yield
            finally:
                f.seek(0)
                if f.read().strip() == str(os.getpid()):  # announced: empty it again
                    f.seek(0)
                    f.truncate()
                    f.flush()
                fcntl.flock(f, fcntl.LOCK_UN)

    def announce(self) -> None:
        """Name this process as the version's driver in ``driver.lock`` (while holding it)."""
        with open(self.path / "driver.lock", "r+") as f:
            f.truncate()
            f.write(str(os.getpid()))


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
    root: Path,
    digest: str,
    command: str = "",
    tracking_uri: str = "",
    after: int = 0,
    spaces: dict[str, str] | None = None,
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
    version = Version(
        number=n,
        path=path,
        spec_hash=digest,
        command=command,
        tracking_uri=tracking_uri,
        space_hashes=dict(spaces or {}),
    )
    version.save()
    (path / "driver.lock").touch()  # held by its drivers, never removed (hold)
    return version


def choose_version(
    latest: Version | None,
    digest: str,
    *,
    resume: bool,
    new: bool,
    retry_failed: bool,
    spec: str,
    root: Path,
    spaces: dict[str, str] | None = None,
) -> Version | None:
    """The version a ``ftsweep run`` resumes (``latest``, the latest version under ``root``,
    which the caller holds: :func:`hold_latest`), or None for a new one (created later, by
    :func:`create_version`, once nothing can refuse the run any more). Writes nothing.

    Raises:
        ConfigError: ``--resume`` with nothing to resume or after the spec or a job's resolved
            search space (``spaces``: :func:`space_hashes`) changed; a plain run while the latest
            version is unfinished (without ``--new``).
    """
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
        changed = [
            j for j, h in (spaces or {}).items() if latest.space_hashes and latest.space_hashes.get(j) != h
        ]
        if changed:
            raise ConfigError(
                "--resume",
                spec,
                f"the search space of {changed[0]} changed since v{latest.number} was started (a "
                "search_spaces function the spec names returns another space); run it as a new "
                "version with --new",
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


@contextmanager
def hold_latest(root: Path, spec: str) -> Iterator[Version | None]:
    """The latest version under ``root``, held (:meth:`Version.hold`, nothing written: a resumed
    version is announced once nothing can refuse the run) and read again under the hold while
    the caller chooses and starts what to run, so that no other driver resumes, ends or finishes
    it meanwhile; None where there is none.

    Raises:
        ConfigError: another live driver holds it.
    """
    latest = latest_version(root)
    if latest is None:
        yield None
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(latest.hold(wait=False, announce=False))  # writes nothing
        except VersionHeld as e:
            who = f"running now (driver pid {e.pid})" if e.pid > 0 else "being started by another driver now"
            raise ConfigError(
                "spec", spec, f"v{latest.number} of this sweep is {who}; wait for it or stop it"
            ) from None
        yield Version.load(latest.path)
