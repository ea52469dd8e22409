"""The commit a run records: $FTSWEEP_GIT_COMMIT, git, or ``ftsweep stamp``'s .ftsweep_commit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ftsweep.cli import main
from ftsweep.gitinfo import COMMIT_FILE, read_commit_file, stamp_commit
from ftsweep.tracking import git_commit


def _git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def test_env_var_wins(monkeypatch, checkout: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("FTSWEEP_GIT_COMMIT", "abc123")
    assert git_commit(checkout) == "abc123"
    assert git_commit(tmp_path) == "abc123"


def test_no_checkout_no_file_is_unknown(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FTSWEEP_GIT_COMMIT", raising=False)
    assert git_commit(tmp_path) == "unknown"


def test_stamp_then_a_working_dir_without_git(monkeypatch, checkout: Path, tmp_path: Path, capsys) -> None:
    """What ``ftsweep stamp && ray job submit --working-dir .`` does: the uploaded copy has the
    file but no .git, and git_commit() reads the file."""
    monkeypatch.delenv("FTSWEEP_GIT_COMMIT", raising=False)
    sha = _git(checkout, "rev-parse", "HEAD")
    assert main(["stamp", "--dir", str(checkout)]) == 0
    assert sha in capsys.readouterr().out
    stamp = json.loads((checkout / COMMIT_FILE).read_text())
    assert stamp["commit"] == sha and stamp["dirty"] is False
    # the stamp file itself (untracked) does not make the tree dirty
    assert stamp_commit(checkout) == sha
    job_dir = tmp_path / "job"  # the uploaded working dir: files only
    job_dir.mkdir()
    (job_dir / COMMIT_FILE).write_text((checkout / COMMIT_FILE).read_text())
    (job_dir / "a.py").write_text("x = 1\n")
    assert git_commit(job_dir) == sha
    monkeypatch.chdir(job_dir)  # the default: the current dir, as ftsweep run on the cluster
    assert git_commit() == sha
    # git wins over a stale file inside a checkout
    (checkout / COMMIT_FILE).write_text(json.dumps({"commit": "stale", "dirty": False}))
    assert git_commit(checkout) == sha


def test_stamp_records_uncommitted_changes(monkeypatch, checkout: Path) -> None:
    monkeypatch.delenv("FTSWEEP_GIT_COMMIT", raising=False)
    (checkout / "a.py").write_text("x = 2\n")
    sha = _git(checkout, "rev-parse", "HEAD")
    assert stamp_commit(checkout) == f"{sha}-dirty"
    assert read_commit_file(checkout) == f"{sha}-dirty"


def test_stamp_outside_a_checkout_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["stamp", "--dir", str(tmp_path)]) == 2
    assert "not a git checkout" in capsys.readouterr().err
    assert not (tmp_path / COMMIT_FILE).exists()


def test_unreadable_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / COMMIT_FILE).write_text("not json")
    assert read_commit_file(tmp_path) is None
