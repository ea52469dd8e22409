"""The git commit of a sweep's code where there is no checkout: ``.ftsweep_commit``.

``ray job submit --working-dir .`` uploads the files of a checkout but not its ``.git``, so
``git rev-parse`` finds no commit on the cluster. ``ftsweep stamp`` (run in the checkout right
before ``ray job submit``) writes the commit and whether the tree has uncommitted changes to
``.ftsweep_commit`` in the working dir; :func:`ftsweep.tracking.git_commit` reads it when git
cannot answer. The file must not be git-ignored (Ray honours ``.gitignore`` when uploading).
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

__all__ = ["COMMIT_FILE", "read_commit_file", "stamp_commit"]

#: the file, in the working dir, that carries the commit to a cluster job
COMMIT_FILE = ".ftsweep_commit"


def _git(args: list[str], cwd: str | Path) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.strip()


def stamp_commit(cwd: str | Path = ".") -> str:
    """Write ``{"commit", "dirty", "stamped_at"}`` of the checkout at ``cwd`` to its
    ``.ftsweep_commit``; return the commit as recorded (``<sha>`` or ``<sha>-dirty``: tracked
    files differ from the commit; untracked files do not count).

    Raises:
        RuntimeError: ``cwd`` is not in a git checkout (or git is missing).
    """
    try:
        sha = _git(["rev-parse", "HEAD"], cwd)
        status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"{Path(cwd).resolve()} is not a git checkout ({type(e).__name__})") from None
    dirty = bool(status)
    stamp = {
        "commit": sha,
        "dirty": dirty,
        "stamped_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    (Path(cwd) / COMMIT_FILE).write_text(json.dumps(stamp) + "\n")
    return sha + ("-dirty" if dirty else "")


def read_commit_file(cwd: str | Path | None = None) -> str | None:
    """The commit ``.ftsweep_commit`` in ``cwd`` (default: the current dir) records
    (``<sha>`` or ``<sha>-dirty``), or None without a readable file."""
    path = Path(cwd or ".") / COMMIT_FILE
    try:
        stamp = json.loads(path.read_text())
        sha = str(stamp["commit"]).strip()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (sha + ("-dirty" if stamp.get("dirty") else "")) if sha else None
