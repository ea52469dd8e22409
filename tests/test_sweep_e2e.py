"""End to end: a --smoke sweep through Ray Tune into MLflow; a failing trial does not stop it."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

SPEC = """
name: e2e
methods:
  - method: ce
  - method: scl
    config: {temperature: 0.2}
    search_space: {lambda_: [0.1, 0.5, 0.9]}
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 3, lr: 0.05, labels_per_class: 3}
seeds: [0, 1]
searcher: grid
resources: {cpu: 1, gpu: 0}
smoke: {pretrained: none}
table: {rows: method, cols: dataset, metric: test/acc, baseline: ce}
"""


@pytest.fixture(scope="module")
def sweep(ray_session, tmp_path_factory):
    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec

    tmp = tmp_path_factory.mktemp("e2e")
    spec_path = tmp / "e2e.yaml"
    spec_path.write_text(textwrap.dedent(SPEC))
    uri = f"sqlite:///{tmp}/mlflow.db"
    spec = load_spec(spec_path, smoke=True)
    result = run_spec(spec, results_dir=tmp / "results", tracking_uri=uri, log=False)
    return spec, result, uri, tmp


def test_one_mlflow_run_per_trial_with_params_and_metrics(sweep) -> None:
    from ftsweep.runs import load_runs

    spec, result, uri, _ = sweep
    # ce: 1 config; scl: --smoke keeps the first 2 λ values; 1 seed under --smoke
    assert result.trials == 3 and result.errors == 0
    runs = load_runs(spec.experiment, uri, status=None)
    assert len(runs) == 3
    assert set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["method"]) == ["ce", "scl", "scl"]
    assert sorted(runs[runs.method == "scl"]["lambda_"]) == [0.1, 0.5]
    for col in ("test/acc", "val/acc", "best/val/acc", "best/epoch", "train/loss", "time/epoch_s"):
        assert runs[col].notna().all(), col
    assert (runs["epochs"] == 2).all() and (runs["max_train_batches"] == 2).all()
    assert set(runs["seed"]) == {0}


def test_per_epoch_metric_history(sweep) -> None:
    from mlflow.tracking import MlflowClient

    spec, _, uri, _ = sweep
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(spec.experiment)
    for run in client.search_runs([exp.experiment_id], filter_string="tags.trial_id != ''"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/acc")]
        assert steps == [1, 2]
        assert run.data.tags["sweep"] == "e2e" and run.data.tags["dataset"] == "digits"
        assert run.data.tags["git_commit"]


def test_each_run_has_the_metrics_its_method_declares(sweep) -> None:
    """The run's metric columns are what ``check_jobs`` holds ``table.metric`` to: the method's
    ``logged_metrics`` of the trial's config and the fields Tune adds."""
    from mlflow.tracking import MlflowClient

    from ftsweep.runner import TUNE_METRICS
    from ftsweep.runs import parse_param
    from ftsweep.trial import method_class

    spec, _, uri, _ = sweep
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(spec.experiment)
    runs = client.search_runs([exp.experiment_id], filter_string="tags.trial_id != ''")
    assert len(runs) == 3
    for run in runs:
        cls = method_class(run.data.tags["method"])
        params = {k: parse_param(v) for k, v in run.data.params.items() if k in cls.config_cls.field_names()}
        tuples = {k: ast.literal_eval(v) for k, v in params.items() if isinstance(v, str) and v[:1] in "(["}
        cfg = cls.config_cls.from_dict({**params, **tuples})
        assert set(run.data.metrics) == cls.logged_metrics(cfg) | TUNE_METRICS


def test_tune_storage_under_results(sweep) -> None:
    """One Tune experiment for every job, in the spec's first version folder (--smoke: its own)."""
    _, result, _, tmp = sweep
    assert result.storage == (tmp / "results" / "e2e-smoke" / "v1").resolve() and result.version == 1
    assert (result.storage / "tune" / "tuner.pkl").is_file()
    assert (result.storage / "version.json").is_file()


def test_failing_trial_is_recorded_and_sweep_continues(ray_session, tmp_path: Path) -> None:
    """lr = 1e30 diverges to a non-finite loss: that trial fails with the reason in MLflow,
    the other trial of the same sweep finishes."""
    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec
    from ftsweep.runs import load_runs

    spec_path = tmp_path / "nan.yaml"
    spec_path.write_text(
        textwrap.dedent(
            """
            name: nan
            method: ce
            dataset: digits
            pretrained: none
            config: {epochs: 4, labels_per_class: 3, momentum: 0.0}
            search_space: {lr: [0.05, 1.0e+30]}
            seeds: [0]
            """
        )
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_spec(load_spec(spec_path), results_dir=tmp_path / "results", tracking_uri=uri, log=False)
    assert (result.trials, result.errors) == (2, 1)
    runs = load_runs("nan", uri, status=None).set_index("lr")
    assert runs.loc[0.05, "status"] == "FINISHED"
    assert runs.loc[1e30, "status"] == "FAILED"
    assert (
        "NonFiniteLossError" in runs.loc[1e30, "error"]
        and "non-finite training loss" in runs.loc[1e30, "error"]
    )
    # the failure ended the trial at once (no Tune retry of a deterministic failure) …
    assert "restored_from_iteration" not in load_runs("nan", uri, status=None).columns
    # … and --resume --retry-failed runs it again as a new trial of the same version
    again = run_spec(
        load_spec(spec_path),
        results_dir=tmp_path / "results",
        tracking_uri=uri,
        log=False,
        resume=True,
        retry_failed=True,
    )
    assert (again.version, again.trials, again.errors) == (1, 2, 1)
    assert (tmp_path / "results" / "nan" / "v1" / "retry1").is_dir()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("nan")
    failed = client.search_runs(
        [exp.experiment_id], filter_string="tags.trial_id != '' and attributes.status = 'FAILED'"
    )
    assert len(failed) == 2  # the first attempt's run is kept, the retry has its own
    assert len(load_runs("nan", uri)) == 1  # one finished trial counted once


def test_a_second_retry_runs_only_what_the_first_left_failed(ray_session, tmp_path: Path) -> None:
    """Two of three failed trials stay failed (lr = 1e30 diverges); the third failed on an image
    cut short after its header, fixed before the first --retry-failed. The second --retry-failed
    retries only the two: it ran the fixed one a second time (a second FINISHED run of one trial)."""
    import numpy as np
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec

    rng = np.random.RandomState(0)
    images = tmp_path / "images"
    for part, n in (("train", 12), ("test", 4)):
        for cls in ("a", "b"):
            (images / part / cls).mkdir(parents=True)
            for i in range(n):
                pixels = (rng.rand(16, 16, 3) * 255).astype("uint8")
                Image.fromarray(pixels).save(images / part / cls / f"{i}.jpg", quality=95)
    cut = images / "test" / "a" / "3.jpg"  # not a class's first image: validation opens those
    whole = cut.read_bytes()
    cut.write_bytes(whole[: len(whole) * 4 // 5])  # its header whole: found when a trial decodes it
    spec_path = tmp_path / "retry.yaml"
    spec_path.write_text(
        textwrap.dedent(
            f"""
            name: retry
            method: ce
            datasets: [{images}, digits]
            pretrained: none
            config: {{epochs: 2, labels_per_class: 3, momentum: 0.0, max_train_batches: 2}}
            search_space: {{lr: [0.05, 1.0e+30]}}
            seeds: [0]
            """
        )
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    kw = {"results_dir": tmp_path / "results", "tracking_uri": uri, "log": False}
    assert run_spec(load_spec(spec_path), **kw).errors == 3
    cut.write_bytes(whole)
    first = run_spec(load_spec(spec_path), resume=True, retry_failed=True, **kw)
    second = run_spec(load_spec(spec_path), resume=True, retry_failed=True, **kw)
    assert (first.trials, first.errors, second.trials, second.errors) == (4, 2, 4, 2)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("retry")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.trial_id != ''")
    fixed = [
        r.info.status for r in runs if r.data.tags["job"] != "ce-digits" and r.data.params["lr"] == "0.05"
    ]
    assert sorted(fixed) == ["FAILED", "FINISHED"]  # the first attempt and the first retry
    diverged = [r.info.status for r in runs if r.data.params["lr"] == "1e+30"]
    assert diverged == ["FAILED"] * 6  # two trials, each tried three times
    assert len(runs) == 4 + 3 + 2


def test_optuna_asha_runs_every_suggestion_once_per_seed(ray_session, tmp_path: Path) -> None:
    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec
    from ftsweep.runs import load_runs

    spec_path = tmp_path / "opt.yaml"
    spec_path.write_text(
        textwrap.dedent(
            """
            name: opt
            method: scl
            dataset: digits
            pretrained: none
            config: {epochs: 2, labels_per_class: 3, lr: 0.05}
            search_space: {lambda_: [0.1, 0.9], temperature: [0.1, 0.5]}
            seeds: [0, 1]
            searcher: optuna
            scheduler: asha
            num_samples: 2
            """
        )
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_spec(load_spec(spec_path), results_dir=tmp_path / "results", tracking_uri=uri, log=False)
    assert (result.trials, result.errors) == (4, 0)
    runs = load_runs("opt", uri, status=None)
    assert len(runs) == 4
    seeds_per_config = runs.groupby(["lambda_", "temperature"])["seed"].apply(lambda s: sorted(s)).tolist()
    assert all(s == [0, 1] for s in seeds_per_config), seeds_per_config


def test_mlflow_shows_every_setting_nested_and_named(sweep) -> None:
    """Params are every field of the resolved config (defaults included); trial runs nest under
    their job's run, which nests under the version's; names say what differs; the spec as run,
    the environment and each trial's learning curves are artifacts."""
    from mlflow.tracking import MlflowClient

    from ftsweep.methods.scl import SCLConfig

    spec, _, uri, tmp = sweep
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(spec.experiment)
    runs = client.search_runs([exp.experiment_id])
    kinds = {r.info.run_id: r.data.tags.get("ftsweep.kind", "trial") for r in runs}
    (sweep_run,) = [r for r in runs if kinds[r.info.run_id] == "sweep"]
    jobs = {r.data.tags["ftsweep.name"]: r for r in runs if kinds[r.info.run_id] == "job"}
    assert set(jobs) == {"ce-digits", "scl-digits"}
    assert all(j.data.tags["mlflow.parentRunId"] == sweep_run.info.run_id for j in jobs.values())
    trials = [r for r in runs if kinds[r.info.run_id] == "trial"]
    for r in trials:
        assert r.data.tags["mlflow.parentRunId"] == jobs[r.data.tags["job"]].info.run_id
        assert r.data.tags["sweep_version"] == "1" and r.data.tags["device"] == "cpu"
        assert {a.path for a in client.list_artifacts(r.info.run_id)} == {"learning_curves.png"}
        trial_dir = Path(r.data.tags["trial_dir"])  # the trial's folder in the version, with its checkpoints
        assert trial_dir.parent == (tmp / "results" / "e2e-smoke" / "v1" / "tune").resolve()
        assert list(trial_dir.glob("checkpoint_*/state.pt"))
    scl = [r for r in trials if r.data.tags["method"] == "scl"]
    assert sorted(r.data.tags["mlflow.runName"] for r in scl) == ["scl λ=0.1 seed=0", "scl λ=0.5 seed=0"]
    fields = set(SCLConfig.field_names())
    assert set(scl[0].data.params) == fields  # defaults included, nothing else
    assert scl[0].data.params["weight_decay"] == str(SCLConfig.weight_decay)  # not set by the spec
    assert {a.path for a in client.list_artifacts(sweep_run.info.run_id)} >= {"spec.yaml", "environment.json"}
    assert exp.tags.get("mlflow.note.content", "") == spec.description
    assert exp.artifact_location.startswith((tmp / "mlartifacts").as_uri())


def test_max_concurrent_trials_holds_across_jobs(ray_session, tmp_path: Path) -> None:
    """Two jobs of a grid search on 2 CPUs with max_concurrent_trials: 1 — never two trials at
    once (Tune ignores the limit with its own grid search; ftsweep's searcher obeys it)."""
    from mlflow.tracking import MlflowClient

    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec

    spec_path = tmp_path / "mct.yaml"
    spec_path.write_text(
        textwrap.dedent(
            """
            name: mct
            methods: [ce, {method: ce, name: ce2}]
            dataset: digits
            pretrained: none
            config: {epochs: 2, labels_per_class: 3, max_train_batches: 2}
            seeds: [0, 1]
            max_concurrent_trials: 1
            """
        )
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_spec(load_spec(spec_path), results_dir=tmp_path / "results", tracking_uri=uri, log=False)
    assert (result.trials, result.errors) == (4, 0)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mct")
    runs = sorted(
        client.search_runs([exp.experiment_id], filter_string="tags.trial_id != ''"),
        key=lambda r: r.info.start_time,
    )
    assert len(runs) == 4
    for a, b in zip(runs, runs[1:], strict=False):
        assert a.info.end_time <= b.info.start_time  # one after another


def test_hyperband_pauses_and_resumes_trials_in_their_own_runs(ray_session, tmp_path: Path) -> None:
    """``scheduler: hyperband``: trials paused at a rung resume from their checkpoints in the
    same MLflow run (tag ``restored_from_iteration``), no epoch is logged twice, the worse are
    stopped early, and every run ends FINISHED."""
    from mlflow.tracking import MlflowClient

    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec

    spec_path = tmp_path / "hb.yaml"
    spec_path.write_text(
        textwrap.dedent(
            """
            name: hb
            method: scl
            dataset: digits
            pretrained: none
            config: {epochs: 9, labels_per_class: 3, lr: 0.05, max_train_batches: 1, max_eval_batches: 1}
            search_space: {lambda_: [0.1, 0.5, 0.9], temperature: [0.1, 0.3, 0.5]}
            seeds: [0]
            scheduler: hyperband
            """
        )
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_spec(load_spec(spec_path), results_dir=tmp_path / "results", tracking_uri=uri, log=False)
    assert (result.trials, result.errors) == (9, 0)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("hb")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.trial_id != ''")
    assert len(runs) == 9 and {r.info.status for r in runs} == {"FINISHED"}
    epochs = {}
    for r in runs:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "val/acc")]
        assert steps == list(range(1, len(steps) + 1)), steps  # each epoch once, in order
        epochs[r.info.run_id] = len(steps)
    assert min(epochs.values()) < 9 and max(epochs.values()) == 9  # some stopped, the best ran on
    assert any(r.data.tags.get("restored_from_iteration") for r in runs)  # paused, then resumed


def test_versions_are_numbered_across_results_folders_of_one_store(ray_session, tmp_path: Path) -> None:
    """Two results folders (or one removed and made again) logging to one store: each numbered
    its versions from 1, so the store held two sweeps as v1 — a table of v1 pooled them, and the
    second's trials were nested under the first's version run. And ``--new`` beside a version
    whose driver died left that version's runs RUNNING for ever."""
    from mlflow.tracking import MlflowClient

    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec
    from ftsweep.runs import load_runs, sweep_versions
    from ftsweep.versions import latest_version

    spec_path = tmp_path / "e2e.yaml"
    text = SPEC.replace("lambda_: [0.1, 0.5, 0.9]", "lambda_: [0.5]").replace(
        "baseline: ce}", "select_by: val/loss}"
    )
    spec_path.write_text(textwrap.dedent(text))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = load_spec(spec_path, smoke=True)
    first = run_spec(spec, results_dir=tmp_path / "a", tracking_uri=uri, log=False)
    second = run_spec(spec, results_dir=tmp_path / "b", tracking_uri=uri, log=False)
    assert (first.version, second.version) == (1, 2)
    assert (tmp_path / "b" / spec.folder / "v2").is_dir() and not (
        tmp_path / "b" / spec.folder / "v1"
    ).exists()
    v1, v2 = (load_runs(spec.experiment, uri, version=v) for v in (1, 2))
    assert len(v1) == len(v2) == 2 and not set(v1["run_id"]) & set(v2["run_id"])
    assert sweep_versions(spec.experiment, uri) == {spec.name: [1, 2]}
    assert v1.attrs["select_by"] == ["val/loss"]  # what `ftsweep table` selects these runs by

    # v2's driver "died": its version is left running, with a run RUNNING in the store
    dead = latest_version(tmp_path / "b" / spec.folder)
    dead.state = "running"
    dead.save()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(spec.experiment).experiment_id
    left = client.create_run(
        exp, tags={"sweep": spec.name, "sweep_version": "2", "trial_id": "x"}
    ).info.run_id
    third = run_spec(spec, results_dir=tmp_path / "b", tracking_uri=uri, new=True, log=False)
    assert third.version == 3 and third.finished == 2
    assert (
        client.get_run(left).info.status == "KILLED" and client.get_run(left).data.tags["status"] == "KILLED"
    )
    running = client.search_runs([exp], "attributes.status = 'RUNNING'")
    assert running == []
