"""A driver holds the latest version from reading its state until it runs one of its own, and a
resume compares each job's resolved search space: two audit findings (2026-12-04) in which a
``--new`` ended the runs of a version another driver had just chosen to resume (it held the
version only after its data and Ray were ready), and a ``search_spaces`` function whose grid
changed was resumed as the same sweep (the spec's text had not changed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ray import tune

from ftsweep import cli
from ftsweep.config.spec import load_spec
from ftsweep.versions import create_version, space_hashes, spec_hash

SPEC = """
name: t
method: coin
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, labels_per_class: 3}
search_space: "search_spaces.coin:table4_alpha"
seeds: [0]
resources: {cpu: 1, gpu: 0}
"""


class ReachedRay(Exception):
    """The command got past every check and would start Ray."""


@pytest.fixture
def spec(monkeypatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(SPEC))
    return str(tmp_path / "spec.yaml")


def _unfinished_v1(spec: str, spaces: dict[str, str] | None = None):
    """v1 of ``spec`` as a killed driver leaves it: state running, Tune's state on disk."""
    s = load_spec(spec)
    uri = f"sqlite:///{Path(spec).parent}/mlflow.db"
    version = create_version(
        Path("results").resolve() / s.folder,
        spec_hash(s.raw, smoke=False),
        "",
        uri,
        spaces=space_hashes({j.name: j.space for j in s.jobs()}) if spaces is None else spaces,
    )
    version.experiment_dir.mkdir()
    (version.experiment_dir / "tuner.pkl").write_bytes(b"")
    return version


@pytest.mark.parametrize("second", [["--new"], ["--resume"], []])
def test_a_run_started_while_another_driver_prepares_its_resume_is_refused(
    second: list[str], spec: str, monkeypatch, capsys
) -> None:
    import ftsweep.runner

    _unfinished_v1(spec)
    seen: dict[str, object] = {}

    def init_ray(*args, **kwargs):
        if "second" in seen:  # the second driver got past its checks
            raise ReachedRay
        capsys.readouterr()
        try:
            seen["second"] = cli.main(["run", spec, *second])  # while the first readies Ray
        except ReachedRay:
            seen["second"] = "reached Ray"
        seen["err"] = capsys.readouterr().err
        raise ReachedRay

    monkeypatch.setattr(ftsweep.runner, "init_ray", init_ray)
    with pytest.raises(ReachedRay):
        cli.main(["run", spec, "--resume"])
    assert seen["second"] == 2, seen
    # the first has not named itself yet (it does once nothing can refuse its run)
    assert "v1 of this sweep is being started by another driver now; wait for it" in str(seen["err"])
    assert (Path("results/t/v1/driver.lock")).read_text() == ""  # the refusal wrote nothing
    # the first driver's hold ends with it: the version can be resumed again
    with pytest.raises(ReachedRay):
        cli.main(["run", spec, "--resume"])


def test_a_running_driver_is_named_by_its_pid(spec: str, no_ray, capsys) -> None:
    import subprocess
    import sys

    version = _unfinished_v1(spec)
    holder = subprocess.Popen(  # a driver of v1 in another process, holding and named
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from ftsweep.versions import Version\n"
         "v = Version.load(Path(sys.argv[1]))\nwith v.hold():\n    print('held', flush=True); time.sleep(60)",
         str(version.path)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        for flags in (["--resume"], ["--new"], []):
            assert cli.main(["run", spec, *flags]) == 2
            err = capsys.readouterr().err
            assert f"v1 of this sweep is running now (driver pid {holder.pid}); wait for it" in err, err
    finally:
        holder.kill()
        holder.wait()


def test_resume_refuses_a_search_space_function_that_returns_another_grid(
    spec: str, monkeypatch, capsys, no_ray
) -> None:
    import search_spaces.coin

    _unfinished_v1(spec)
    grid = search_spaces.coin.ALPHAS
    monkeypatch.setattr(search_spaces.coin, "ALPHAS", [0.1, 0.5])  # the function's grid changed
    assert cli.main(["run", spec, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--resume: " in err and "the search space of coin-digits changed since v1 was started" in err
    monkeypatch.setattr(search_spaces.coin, "ALPHAS", grid)
    with pytest.raises(AssertionError, match="must not start"):  # the same grid again: on to Ray
        cli.main(["run", spec, "--resume"])


def test_a_version_from_before_space_hashes_resumes(spec: str, monkeypatch) -> None:
    import ftsweep.runner
    import search_spaces.coin

    _unfinished_v1(spec, spaces={})
    monkeypatch.setattr(search_spaces.coin, "ALPHAS", [0.1, 0.5])
    monkeypatch.setattr(ftsweep.runner, "init_ray", lambda *a, **k: (_ for _ in ()).throw(ReachedRay()))
    with pytest.raises(ReachedRay):
        cli.main(["run", spec, "--resume"])


def test_space_hashes_are_the_same_for_equal_tune_domains_and_differ_otherwise() -> None:
    def space(upper: float) -> dict:
        return {
            "lr": tune.loguniform(1e-4, upper),
            "wd": tune.choice([0, 1e-4]),
            "a": tune.grid_search([1, 2]),
        }

    assert space_hashes({"j": space(0.1)}) == space_hashes({"j": space(0.1)})  # two objects, one hash
    assert space_hashes({"j": space(0.1)}) != space_hashes({"j": space(0.01)})
    assert space_hashes({"j": {"lr": tune.uniform(1e-4, 0.1)}}) != space_hashes(
        {"j": {"lr": tune.loguniform(1e-4, 0.1)}}
    )
