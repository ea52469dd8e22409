"""``runner.prepare_paths``: every checkpoint path a trial reads is absolute (Tune runs trials in
their own folders), searched ones included, and ``pretrained: auto`` is built only when a trial
uses it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

SPEC = """
name: p
method: ce
dataset: digits
backbone: small_cnn
config: {epochs: 2, labels_per_class: 3}
search_space: {pretrained: [a.pt, sub/b.pt]}
points_to_evaluate: [{pretrained: sub/b.pt}]
searcher: optuna
num_samples: 2
"""


@pytest.fixture
def no_pretraining(monkeypatch):
    import ftsweep.pretrain

    def boom(*a, **k):
        raise AssertionError("the auto checkpoint was built though no trial uses it")

    monkeypatch.setattr(ftsweep.pretrain, "pretrain_simclr", boom)


def _jobs(tmp_path: Path, text: str, monkeypatch):
    from ftsweep.backbones import create_backbone
    from ftsweep.config.spec import load_spec
    from ftsweep.runner import prepare_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    for name in ("a.pt", "sub/b.pt"):
        torch.save(create_backbone("small_cnn").state_dict(), tmp_path / name)
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(text))
    spec = load_spec(str(tmp_path / "spec.yaml"))
    return prepare_paths(spec, spec.jobs(), tmp_path / "results")


def test_searched_checkpoints_are_absolute_and_auto_is_not_built(
    tmp_path, monkeypatch, no_pretraining
) -> None:
    """A relative searched path failed every trial ("checkpoint 'a.pt' does not exist"), after
    the unused default ``auto`` checkpoint had been pretrained for minutes."""
    (job,) = _jobs(tmp_path, SPEC, monkeypatch)
    values = job.space["pretrained"]
    values = values["grid_search"] if isinstance(values, dict) else list(values.categories)
    assert values == [str(tmp_path / "a.pt"), str(tmp_path / "sub" / "b.pt")]
    assert job.points[0]["pretrained"] == str(tmp_path / "sub" / "b.pt")
    assert "pretrained" not in job.fixed


def test_a_grid_of_checkpoints_is_made_absolute(tmp_path, monkeypatch, no_pretraining) -> None:
    grid = SPEC.replace("searcher: optuna\nnum_samples: 2\n", "searcher: grid\n").replace(
        "points_to_evaluate: [{pretrained: sub/b.pt}]\n", ""
    )
    (job,) = _jobs(tmp_path, grid, monkeypatch)
    assert job.space["pretrained"] == {
        "grid_search": [str(tmp_path / "a.pt"), str(tmp_path / "sub" / "b.pt")]
    }


def test_a_fixed_relative_checkpoint_is_made_absolute(tmp_path, monkeypatch, no_pretraining) -> None:
    fixed = SPEC.replace(
        "search_space: {pretrained: [a.pt, sub/b.pt]}", "pretrained: sub/b.pt\nsearch_space: {lr: [0.1, 0.2]}"
    )
    fixed = fixed.replace("points_to_evaluate: [{pretrained: sub/b.pt}]\n", "").replace("optuna", "grid")
    fixed = fixed.replace("num_samples: 2\n", "")
    (job,) = _jobs(tmp_path, fixed, monkeypatch)
    assert job.fixed["pretrained"] == str(tmp_path / "sub" / "b.pt")
