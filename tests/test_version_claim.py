"""A new version's number is claimed in the MLflow store before any trial runs.

Versions are numbered after every version of the spec the store holds, but two drivers of one
spec in different results folders (two checkouts, one shared store) read the store at the same
moment and both took the next number: their trials were pooled as one version's, and the second
driver's were nested under the first one's sweep run. Before, the sweep run (the number's record
in the store) was made at the first trial's result, after Ray, the upstream builds and the first
epoch; now it is made at once, and a claim that meets an earlier claim of its number gives it up.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from ftsweep.config.spec import load_spec  # noqa: E402
from ftsweep.runner import new_version  # noqa: E402
from ftsweep.tracking import open_experiment  # noqa: E402
from ftsweep.versions import spec_hash  # noqa: E402


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: claim
            methods: [{method: ce}]
            dataset: digits
            backbone: small_cnn
            config: {epochs: 1, labels_per_class: 3}
            seeds: [0]
            resources: {cpu: 1, gpu: 0}
            """
        )
    )
    return path


def _sweep_runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`ftsweep.kind` = 'sweep'", max_results=100)


def test_results_folders_on_one_store_never_share_a_number(spec_path: Path, tmp_path: Path) -> None:
    spec = load_spec(spec_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    digest = spec_hash(spec.raw, smoke=False)
    a, b = tmp_path / "a" / spec.folder, tmp_path / "b" / spec.folder
    numbers = [new_version(spec, root, digest, "", uri).number for root in (a, b, a)]
    assert numbers == [1, 2, 3]
    assert sorted(p.name for p in a.iterdir()) == ["v1", "v3"]
    assert [p.name for p in b.iterdir()] == ["v2"]
    runs = _sweep_runs(uri, spec.experiment)
    assert sorted(int(r.data.tags["sweep_version"]) for r in runs) == [1, 2, 3]
    # each claim is the version's sweep run, as its trial logger makes it: named, tagged, the spec kept
    for run in runs:
        assert run.data.tags["sweep"] == "claim" and run.data.tags["ftsweep.name"] == "claim"
        assert run.data.tags["mlflow.runName"] == f"claim v{run.data.tags['sweep_version']}"
        assert run.info.status == "RUNNING"
        names = {f.path for f in MlflowClient(uri).list_artifacts(run.info.run_id)}
        assert {"spec.yaml", "environment.json"} <= names


def test_a_claim_meeting_an_earlier_claim_of_its_number_takes_the_next(
    spec_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other driver's claim lands between this driver's read of the store and its own claim
    (as on an MLflow server, where no lock joins the two): the read is made stale here."""
    spec = load_spec(spec_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client, exp_id = open_experiment(spec.experiment, uri)
    tags = {"ftsweep.kind": "sweep", "ftsweep.name": "claim", "sweep": "claim", "sweep_version": "1"}
    rival = client.create_run(exp_id, tags=tags).info.run_id
    monkeypatch.setattr("ftsweep.runs.sweep_versions", lambda *a, **k: {})
    root = tmp_path / "results" / spec.folder
    version = new_version(spec, root, spec_hash(spec.raw, smoke=False), "", uri)
    assert version.number == 2
    assert [p.name for p in root.iterdir()] == ["v2"]  # v1's folder given up with its number
    runs = {int(r.data.tags["sweep_version"]): r.info.run_id for r in _sweep_runs(uri, spec.experiment)}
    assert runs[1] == rival and set(runs) == {1, 2}  # the given-up claim is deleted
