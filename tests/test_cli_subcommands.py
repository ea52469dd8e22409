"""Bad flags of ``run``, ``table``, ``export``, ``ui`` and ``pretrain``: one line naming the flag,
the value and what is allowed; exit 2; before Ray starts and before anything is written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ftsweep import cli

SPEC = """
name: t
method: scl
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 2, lr: 0.05, temperature: 0.1, labels_per_class: 3}
search_space: {lambda_: [0.1, 0.5]}
seeds: [0]
searcher: grid
scheduler: fifo
resources: {cpu: 1, gpu: 0}
"""


class Reached(Exception):
    """The command got past its checks (raised by a stand-in for the runner)."""


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def tmp(no_ray, monkeypatch, tmp_path):
    """An empty working directory; Ray must not start; the default tracking URI."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def spec(tmp) -> str:
    p = tmp / "spec.yaml"
    p.write_text(textwrap.dedent(SPEC))
    return str(p)


@pytest.fixture
def reach_run_spec(monkeypatch) -> dict:
    """``run_spec`` records its keyword arguments and raises :class:`Reached`."""
    import ftsweep.runner

    seen: dict = {}

    def fake(spec, **kwargs):
        seen.update(kwargs)
        raise Reached

    monkeypatch.setattr(ftsweep.runner, "run_spec", fake)
    return seen


def _bad(argv: list[str], capsys, root: Path) -> str:
    """``ftsweep ARGV`` exits 2 with one error line and writes nothing under ``root``."""
    before = _tree(root)
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ftsweep: error: "), err
    assert _tree(root) == before, sorted(map(str, _tree(root) - before))
    return err


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A SQLite store with one finished version of experiment ``exp``: ce and scl on digits,
    two seeds each (no ``alpha`` column, which COIN's Table 4 reads)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("exp")
    for i, (method, seed) in enumerate([("ce", 0), ("ce", 1), ("scl", 0), ("scl", 1)]):
        tags = {"method": method, "label": method, "dataset": "digits", "seed": str(seed)}
        run = client.create_run(exp, tags={**tags, "sweep_version": "1", "job": f"{method}-digits"})
        rid = run.info.run_id
        client.log_param(rid, "lr", "0.05")
        client.log_metric(rid, "best/val/acc", 50.0 + i)
        client.log_metric(rid, "test/acc", 60.0 + i)
        client.set_terminated(rid, "FINISHED")
    return uri


# 1. run --num-cpus


@pytest.mark.parametrize("value", ["-1", "0"])
def test_run_refuses_num_cpus_below_one(value, spec, tmp, capsys) -> None:
    err = _bad(["run", spec, "--num-cpus", value], capsys, tmp)
    assert f"--num-cpus: {value} — must be an integer >= 1" in err


def test_run_passes_a_good_num_cpus_on(spec, tmp, reach_run_spec) -> None:
    with pytest.raises(Reached):
        cli.main(["run", spec, "--num-cpus", "1"])
    assert reach_run_spec["num_cpus"] == 1


# 2. run --results


@pytest.mark.parametrize("below", [False, True])
def test_run_refuses_results_that_is_a_file(below, spec, tmp, capsys) -> None:
    (tmp / "taken").write_text("x")
    results = "taken/sub" if below else "taken"
    err = _bad(["run", spec, "--results", results], capsys, tmp)
    where = f"{Path('taken')} is a file" if below else "it is a file"
    assert f"--results: '{results}' — must be a folder; {where}" in err


def test_run_accepts_a_results_folder_not_made_yet(spec, tmp, reach_run_spec) -> None:
    with pytest.raises(Reached):
        cli.main(["run", spec, "--results", "new/results"])
    assert reach_run_spec["results_dir"] == "new/results" and not (tmp / "new").exists()


# 3. --tracking-uri that MLflow does not open

PLAIN = ["/some/plain/path", "mlruns", "file:///some/mlruns"]


@pytest.mark.parametrize("uri", PLAIN)
def test_run_refuses_a_filesystem_tracking_uri(uri, spec, tmp, capsys) -> None:
    err = _bad(["run", spec, "--tracking-uri", uri], capsys, tmp)
    assert f"--tracking-uri: '{uri}' — a plain path or file: URI is MLflow's filesystem store" in err
    assert "give sqlite:///PATH" in err


def test_run_refuses_a_filesystem_tracking_uri_from_the_environment(spec, tmp, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "./mlruns")
    err = _bad(["run", spec], capsys, tmp)
    assert "MLFLOW_TRACKING_URI: './mlruns' — a plain path or file: URI" in err


def test_run_refuses_an_unknown_tracking_scheme(spec, tmp, capsys) -> None:
    err = _bad(["run", spec, "--tracking-uri", "sqlit:///x.db"], capsys, tmp)
    assert "--tracking-uri: 'sqlit:///x.db' — must be sqlite:///PATH, http(s)://HOST:PORT" in err


def test_run_refuses_a_sqlite_store_below_a_file(spec, tmp, capsys) -> None:
    (tmp / "taken").write_text("x")
    err = _bad(["run", spec, "--tracking-uri", f"sqlite:///{tmp}/taken/mlflow.db"], capsys, tmp)
    assert (
        f"--tracking-uri: 'sqlite:///{tmp}/taken/mlflow.db' — must be a folder; {tmp / 'taken'} is a file"
        in err
    )


@pytest.mark.parametrize(
    "uri",
    ["sqlite:///new/mlflow.db", "http://127.0.0.1:5000", "https://mlflow.example.org", "databricks"]
    + ["postgresql+psycopg2://u@h/db"],
)
def test_run_accepts_the_stores_mlflow_opens(uri, spec, tmp, reach_run_spec) -> None:
    with pytest.raises(Reached):
        cli.main(["run", spec, "--tracking-uri", uri])
    assert reach_run_spec["tracking_uri"] == uri and not (tmp / "new").exists()


def test_mlflows_file_store_opt_out_is_honoured(spec, tmp, monkeypatch, reach_run_spec) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with pytest.raises(Reached):
        cli.main(["run", spec, "--tracking-uri", "mlruns"])


@pytest.mark.parametrize("command", ["table", "export"])
@pytest.mark.parametrize("uri", PLAIN)
def test_reading_commands_refuse_a_filesystem_tracking_uri(command, uri, tmp, capsys) -> None:
    err = _bad([command, "--experiment", "exp", "--tracking-uri", uri], capsys, tmp)
    assert f"--tracking-uri: '{uri}' — a plain path or file: URI" in err


# 4. reading commands never create a store


@pytest.mark.parametrize("command", ["table", "export"])
def test_reading_commands_do_not_create_the_default_store(command, tmp, capsys) -> None:
    err = _bad([command, "--experiment", "nope"], capsys, tmp)
    assert (
        f"--tracking-uri: 'sqlite:///mlflow.db' — no MLflow store there ({tmp / 'mlflow.db'} does not exist)"
        in err
    )
    assert not (tmp / "mlflow.db").exists()


@pytest.mark.parametrize("command", ["table", "export"])
def test_reading_commands_do_not_create_a_stores_folders(command, tmp, capsys) -> None:
    uri = f"sqlite:///{tmp}/a/b/x.db"
    err = _bad([command, "--experiment", "exp", "--tracking-uri", uri], capsys, tmp)
    assert f"--tracking-uri: '{uri}' — no MLflow store there ({tmp}/a/b/x.db does not exist)" in err
    assert not (tmp / "a").exists()


def test_load_runs_does_not_create_a_store(tmp) -> None:
    from ftsweep.runs import load_runs

    with pytest.raises(FileNotFoundError, match="no MLflow store there"):
        load_runs("exp", f"sqlite:///{tmp}/none.db")
    assert _tree(tmp) == set()


def test_table_of_an_existing_store(store, tmp, capsys) -> None:
    assert cli.main(["table", "--experiment", "exp", "--tracking-uri", store]) == 0
    out = capsys.readouterr().out
    assert "| ce | 60.50 ± 0.71 |" in out and "| scl | **62.50 ± 0.71** |" in out
    assert cli.main(["table", "--experiment", "nope", "--tracking-uri", store]) == 2
    assert "--experiment: 'nope' — no MLflow experiment 'nope'; known: " in capsys.readouterr().err


@pytest.mark.parametrize("command", ["table", "export"])
def test_a_version_the_experiment_lacks_names_the_ones_it_has(command, store, tmp, capsys) -> None:
    """``--version 3`` of an experiment with version 1 only: the error is on ``--version`` and
    lists the versions (it said "has no finished runs", as if version 3 had run and failed)."""
    flags = ["--output", str(tmp / "out")] if command == "export" else []
    argv = [command, "--experiment", "exp", "--tracking-uri", store, *flags]
    for version in ("3", "0"):
        err = _bad([*argv, "--version", version], capsys, tmp)
        assert f"--version: '{version}' — experiment 'exp' has versions 1\n" in err, err


def test_a_version_without_finished_runs_counts_its_runs_by_status(tmp, capsys) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/m.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("failing")
    for seed, status in [(0, "FAILED"), (1, "FAILED"), (2, "KILLED")]:
        tags = {"method": "ce", "label": "ce", "dataset": "digits", "seed": str(seed)}
        run = client.create_run(exp, tags={**tags, "sweep_version": "1", "job": "ce-digits"})
        client.set_terminated(run.info.run_id, status)
    capsys.readouterr()  # MLflow's lines on creating the store
    for version in ("1", "latest"):
        err = _bad(
            ["table", "--experiment", "failing", "--tracking-uri", uri, "--version", version], capsys, tmp
        )
        assert f"has no finished runs (version {version}: 2 FAILED, 1 KILLED)\n" in err, err


def test_a_version_whose_trials_ran_again_later_is_still_named(tmp, capsys) -> None:
    """v1's driver died with its trial RUNNING; v2 ran the same trial to the end. ``--version 1``
    said "has versions 2": the version list counted each trial once, under its latest version."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/m.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("again")
    tags = {
        "method": "ce",
        "label": "ce",
        "dataset": "digits",
        "seed": "0",
        "sweep": "again",
        "job": "ce-digits",
    }
    for version, status in (("1", "RUNNING"), ("2", "FINISHED")):
        client.create_run(exp, tags={"sweep": "again", "sweep_version": version, "ftsweep.kind": "sweep"})
        run = client.create_run(exp, tags={**tags, "sweep_version": version})
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
    capsys.readouterr()
    err = _bad(["table", "--experiment", "again", "--tracking-uri", uri, "--version", "1"], capsys, tmp)
    assert "has no finished runs (version 1: 1 RUNNING)\n" in err, err


def test_table_marks_a_cell_with_a_seed_that_did_not_finish(tmp, capsys) -> None:
    """ce's seed 1 FAILED, scl's seed 1 still RUNNING: each cell holds one finished seed of the two
    tried, marked (n=1/2) as run's table does — "± 0.00" alone read as two seeds agreeing."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/m.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("partial")
    for method, seed, status in [("ce", 0, "FINISHED"), ("ce", 1, "FAILED"), ("scl", 0, "FINISHED"),
                                 ("scl", 1, "RUNNING"), ("scl", 2, "FINISHED")]:  # fmt: skip
        tags = {"method": method, "label": method, "dataset": "digits", "seed": str(seed)}
        run = client.create_run(exp, tags={**tags, "sweep_version": "1", "job": f"{method}-digits"})
        client.log_metric(run.info.run_id, "best/val/acc", 50.0)
        client.log_metric(run.info.run_id, "test/acc", 60.0 + seed)
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
    assert cli.main(["table", "--experiment", "partial", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "| ce | 60.00 ± 0.00 (n=1/3) |" in out  # seeds 0, 1, 2 were tried
    assert "| scl | **61.00 ± 1.41** (n=2/3) |" in out


# 5. --output


def test_table_makes_the_outputs_folder_after_the_table(store, tmp, capsys) -> None:
    out = tmp / "no" / "such" / "t.md"
    assert cli.main(["table", "--experiment", "exp", "--tracking-uri", store, "--output", str(out)]) == 0
    assert "| scl | **62.50 ± 0.71** |" in out.read_text()


def test_table_output_parquet_into_a_new_folder(store, tmp) -> None:
    import pandas as pd

    out = tmp / "new" / "t.parquet"
    argv = [
        "table",
        "--experiment",
        "exp",
        "--tracking-uri",
        store,
        "--format",
        "parquet",
        "--output",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert set(pd.read_parquet(out)["row"]) == {"ce", "scl"}


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("t.csv", "parquet", "must end in .parquet with --format parquet"),
        ("t.txt", "parquet", "must end in .parquet with --format parquet"),  # was a traceback
        ("t.parquet", "md", "is a .parquet name but --format is md"),
    ],
)
def test_table_output_name_and_format_agree(name, fmt, message, store, tmp, capsys) -> None:
    """``--format parquet --output t.csv`` wrote CSV text and said "wrote t.csv" (the file's
    suffix chose the format); ``t.txt`` was a traceback."""
    base = ["table", "--experiment", "exp", "--tracking-uri", store, "--format", fmt, "--output"]
    err = _bad([*base, str(tmp / name)], capsys, tmp)
    assert f"--output: {str(tmp / name)!r} — {message}" in err
    assert not (tmp / name).exists()


def test_table_refuses_an_output_that_cannot_be_written(store, tmp, capsys) -> None:
    (tmp / "taken").write_text("x")
    (tmp / "folder").mkdir()
    base = ["table", "--experiment", "exp", "--tracking-uri", store, "--output"]
    err = _bad([*base, "taken/t.md"], capsys, tmp)
    assert f"--output: 'taken/t.md' — must be a folder; {Path('taken')} is a file" in err
    err = _bad([*base, "folder"], capsys, tmp)
    assert "--output: 'folder' — must be a file path; it is a folder" in err


def test_export_refuses_an_output_that_is_a_file(store, tmp, capsys) -> None:
    (tmp / "taken").write_text("x")
    err = _bad(["export", "--experiment", "exp", "--tracking-uri", store, "--output", "taken"], capsys, tmp)
    assert "--output: 'taken' — must be a folder; it is a file" in err


# 6. a layout these runs cannot fill

LAYOUT_ERR = (
    "--layout: 'analysis.coin:table4' — cannot be filled from these runs: runs have no column 'alpha'"
)


def _reader(command: str, store: str, tmp: Path, *flags: str) -> list[str]:
    """``table`` / ``export`` of experiment ``exp`` with ``flags`` (export into ``tmp/export``)."""
    out = ["--output", str(tmp / "export")] if command == "export" else []
    return [command, "--experiment", "exp", "--tracking-uri", store, *flags, *out]


@pytest.mark.parametrize("command", ["table", "export"])
def test_a_layout_without_its_columns_exits_2(command, store, tmp, capsys) -> None:
    err = _bad(_reader(command, store, tmp, "--layout", "analysis.coin:table4"), capsys, tmp)
    assert LAYOUT_ERR in err


@pytest.mark.parametrize(
    ("flag", "value"), [("--rows", "seed"), ("--metric", "test/mpa"), ("--baseline", "ce")]
)
def test_table_refuses_axes_a_layout_would_ignore(flag, value, store, tmp, capsys) -> None:
    argv = ["table", "--experiment", "exp", "--tracking-uri", store, "--layout", "analysis.coin:table4"]
    err = _bad([*argv, flag, value], capsys, tmp)
    assert f"{flag}: '{value}' — is not read with --layout (the layout analysis.coin:table4 names" in err


def test_a_paper_layout_without_its_columns_exits_2(store, tmp, capsys) -> None:
    argv = ["table", "--experiment", "exp", "--tracking-uri", store, "--layout", "analysis.coin:table4"]
    assert LAYOUT_ERR in _bad([*argv, "--paper"], capsys, tmp)


# 7. a name repeated in --rows / --cols


@pytest.mark.parametrize("command", ["table", "export"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rows", "method,method"], "--rows: 'method,method' — must not repeat a name (method)"),
        (
            ["--cols", "dataset,seed,dataset"],
            "--cols: 'dataset,seed,dataset' — must not repeat a name (dataset)",
        ),
        (
            ["--rows", "method", "--cols", "method"],
            "--cols: 'method' — must not repeat a name of --rows (method)",
        ),
        (["--rows", "method,"], "--rows: 'method,' — must be comma-separated column names"),
    ],
)
def test_rows_and_cols_name_each_column_once(command, flags, message, store, tmp, capsys) -> None:
    err = _bad([command, "--experiment", "exp", "--tracking-uri", store, *flags], capsys, tmp)
    assert message in err


def test_table_of_two_row_columns(store, tmp, capsys) -> None:
    assert cli.main(["table", "--experiment", "exp", "--tracking-uri", store, "--rows", "method,seed"]) == 0
    assert "60.00 ± 0.00" in capsys.readouterr().out


# 8. --paper needs --layout


def test_table_refuses_paper_without_layout(store, tmp, capsys) -> None:
    err = _bad(["table", "--experiment", "exp", "--tracking-uri", store, "--paper"], capsys, tmp)
    assert "--paper: True — goes with --layout" in err


# 9. pretrain


@pytest.fixture
def no_training(monkeypatch) -> list:
    """SimCLR's training is replaced by writing a stub checkpoint; the calls are listed."""
    import ftsweep.pretrain.simclr as simclr_mod

    calls: list = []

    def fake(cfg, out, final, log):
        calls.append(cfg)
        Path(out).write_bytes(b"weights")

    monkeypatch.setattr(simclr_mod, "_train", fake)
    return calls


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dataset", "bogus"], "--dataset: 'bogus' — must be one of"),
        (["--dataset", "./no/such/folder"], "--dataset: './no/such/folder' — "),
        (["--dataset", "cifar10"], "--dataset: 'cifar10' — dataset files not found"),
        (["--dataset", "cifar10"], "pass --download to let torchvision fetch it"),
        (["--dataset", "svhn", "--data-root", "elsewhere"], "(data_root 'elsewhere'); pass --download"),
        (["--seed", "-1"], "--seed: -1 — must be in [0, 4294967296)"),
        (["--seed", str(2**32)], f"--seed: {2**32} — must be in [0, 4294967296)"),
        (["--epochs", "0"], "--epochs: 0 — must be >= 1"),
        (["--backbone", "resnet_9000"], "--backbone: 'resnet_9000' — must be small_cnn"),
        (  # SimCLR trains on digits' 32-px images: the first batch failed (an AssertionError)
            ["--backbone", "vit_tiny_patch16_224"],
            "--backbone: 'vit_tiny_patch16_224' — vit_tiny_patch16_224 takes 224×224 images only (its "
            "patch embedding is built for that size); the images are 32×32",
        ),
    ],
)
def test_pretrain_bad_input_exits_2_and_writes_nothing(flags, message, tmp, no_training, capsys) -> None:
    err = _bad(["pretrain", *flags], capsys, tmp)
    assert message in err and not no_training


def test_pretrain_refuses_results_that_is_a_file(tmp, no_training, capsys) -> None:
    (tmp / "taken").write_text("x")
    err = _bad(["pretrain", "--epochs", "1", "--results", "taken"], capsys, tmp)
    assert f"--results: 'taken' — must be a folder; {Path('taken')} is a file" in err


def test_pretrain_reads_data_root_and_download(tmp, no_training, capsys) -> None:
    """``--download`` lets a missing torchvision dataset pass (the loader fetches it);
    ``--data-root`` is where its files are looked for (an empty folder, a failed extraction, is
    refused by the files' checksums). Both reach the training config."""
    assert cli.main(["pretrain", "--dataset", "cifar10", "--epochs", "1", "--download"]) == 0
    assert no_training[-1].download is True and no_training[-1].data_root == "data"
    (tmp / "mine" / "cifar-10-batches-py").mkdir(parents=True)
    args = ["pretrain", "--dataset", "cifar10", "--epochs", "1", "--data-root", "mine", "--force"]
    assert cli.main(args) == 2
    first = Path("mine") / "cifar-10-batches-py" / "data_batch_1"
    assert f"dataset file {first} fails torchvision's integrity check (missing)" in capsys.readouterr().err
    assert cli.main([*args, "--download"]) == 0
    assert no_training[-1].download is True and no_training[-1].data_root == "mine"


def test_a_failed_pretrain_says_how_to_try_again(tmp, monkeypatch, capsys) -> None:
    """A failed build is remembered (``<file>.failed``): the next call replays it in one line and
    names ``--force``, which rebuilds."""
    import ftsweep.pretrain.simclr as simclr_mod

    def broken(cfg, out, final, log):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(simclr_mod, "_train", broken)
    for _ in range(2):  # the failure, then its replay
        assert cli.main(["pretrain", "--epochs", "1"]) == 1
        out = capsys.readouterr().out
        assert "out of memory" in out and "pass --force to try again" in out
    monkeypatch.setattr(simclr_mod, "_train", lambda cfg, out, final, log: Path(out).write_bytes(b"w"))
    assert cli.main(["pretrain", "--epochs", "1", "--force"]) == 0


def test_pretrain_digits_keeps_its_checkpoint_name(tmp, no_training, capsys) -> None:
    assert cli.main(["pretrain", "--epochs", "1"]) == 0
    path = tmp / "results" / "pretrained" / "digits-small_cnn-simclr-e1-b256-s0.pt"
    assert capsys.readouterr().out.strip().endswith(str(path)) and path.read_bytes() == b"weights"


def _image_folder(root: Path) -> Path:
    from PIL import Image

    for part in ("train", "test"):
        for cls in ("a", "b"):
            (root / part / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (8, 8), (40 * i, 90, 0)).save(root / part / cls / f"{i}.png")
    return root


def test_a_folder_datasets_checkpoint_lives_under_results(tmp, no_training, capsys) -> None:
    import hashlib

    from ftsweep.pretrain import SimCLRConfig, default_checkpoint

    data = _image_folder(tmp / "data sets" / "birds")
    before = _tree(data)
    assert cli.main(["pretrain", "--dataset", str(data), "--epochs", "1", "--results", "out"]) == 0
    digest = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:8]
    path = tmp / "out" / "pretrained" / f"birds-{digest}-small_cnn-simclr-e1-b256-s0.pt"
    assert capsys.readouterr().out.strip().endswith(str(path)) and path.is_file()
    assert _tree(data) == before  # nothing beside the dataset
    # the same folder by a relative path: the same checkpoint
    rel = SimCLRConfig(dataset="./data sets/birds", epochs=1)
    assert default_checkpoint(tmp / "out" / "pretrained", rel) == path


def test_registered_datasets_keep_their_checkpoint_tags() -> None:
    from ftsweep.pretrain import SimCLRConfig

    assert SimCLRConfig().tag() == "digits-small_cnn-simclr-e60-b256-s0"
    assert SimCLRConfig(dataset="digits_source", seed=3).tag() == "digits_source-small_cnn-simclr-e60-b256-s3"


@pytest.mark.parametrize("where", ["no/such/folder", "afile"])
def test_list_refuses_a_sweeps_folder_that_is_not_one(where, tmp, capsys) -> None:
    (tmp / "afile").write_text("x")
    err = _bad(["list", "--sweeps", where], capsys, tmp)
    assert f"--sweeps: '{where}' — must be a folder of sweep specs (*.yaml)" in err


def test_list_without_a_sweeps_folder_lists_the_rest(tmp, capsys) -> None:
    assert cli.main(["list"]) == 0  # tmp has no sweeps/
    out = capsys.readouterr().out
    assert "methods:   " in out and "sweeps:    (none in sweeps)" in out


# 10. ui --port


@pytest.fixture
def execv(monkeypatch) -> list:
    """``os.execv`` records the command instead of replacing the process."""
    calls: list = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append(argv))
    return calls


@pytest.mark.parametrize("port", ["99999", "0", "-5"])
def test_ui_refuses_a_port_outside_the_range(port, tmp, execv, capsys) -> None:
    err = _bad(["ui", "--port", port, "--tracking-uri", f"sqlite:///{tmp}/db/mlflow.db"], capsys, tmp)
    assert f"--port: {port} — must be an integer in [1, 65535]" in err and not execv


def test_ui_refuses_a_filesystem_store(tmp, execv, capsys) -> None:
    err = _bad(["ui", "--tracking-uri", "/some/plain/path"], capsys, tmp)
    assert "--tracking-uri: '/some/plain/path' — a plain path or file: URI" in err and not execv


def test_ui_refuses_a_store_that_does_not_exist(tmp, execv, capsys) -> None:
    """A mistyped path: MLflow made an empty store there and showed nothing."""
    err = _bad(["ui", "--tracking-uri", f"sqlite:///{tmp}/typo.db"], capsys, tmp)
    assert (
        f"--tracking-uri: 'sqlite:///{tmp}/typo.db' — no MLflow store there ({tmp}/typo.db does not exist)"
        in err
    )
    assert not execv and not (tmp / "typo.db").exists()


def test_ui_starts_mlflow_on_a_good_port(tmp, execv, capsys) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(f"sqlite:///{tmp}/mlflow.db").search_experiments()  # a sweep's store
    assert cli.main(["ui", "--port", "65535"]) == 0
    assert execv and execv[0][-2:] == ["--port", "65535"]
    assert f"sqlite:///{tmp}/mlflow.db" in execv[0]


# 10. a cell is one method on one dataset


@pytest.mark.parametrize("command", ["table", "export"])
def test_a_cell_of_two_methods_exits_2(command, store, tmp, capsys) -> None:
    # --rows seed: each seed's cell held ce's and scl's runs and showed scl's, unnamed
    err = _bad(_reader(command, store, tmp, "--rows", "seed"), capsys, tmp)
    assert "a table cell seed=0 dataset=digits holds the runs of 2 methods (ce, scl): put method in" in err
    assert not (tmp / "export").exists()


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("sqlite:///", "needs a database file: sqlite:///PATH (an in-memory store"),
        ("sqlite:///:memory:", "needs a database file: sqlite:///PATH (an in-memory store"),
        ("sqlite:///{tmp}/db", "must name a SQLite database file; {tmp}/db is a folder"),
        ("sqlite:///{tmp}/notes.txt", "must name a SQLite database file; {tmp}/notes.txt is another kind"),
    ],
)
def test_run_refuses_a_sqlite_uri_that_names_no_database_file(uri, why, spec, tmp, capsys) -> None:
    """A folder or an empty path passed, then every MLflow write retried "unable to open
    database file" for minutes, leaving a version the next run called unfinished."""
    (tmp / "db").mkdir()
    (tmp / "notes.txt").write_text("not a database\n")
    uri = uri.format(tmp=tmp)
    err = _bad(["run", spec, "--tracking-uri", uri], capsys, tmp)
    assert f"--tracking-uri: '{uri}' — {why.format(tmp=tmp)}" in err


def test_run_accepts_an_existing_sqlite_store(spec, tmp, reach_run_spec) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(f"sqlite:///{tmp}/mlflow.db").search_experiments()  # MLflow makes the database
    with pytest.raises(Reached):
        cli.main(["run", spec, "--tracking-uri", f"sqlite:///{tmp}/mlflow.db"])


@pytest.mark.parametrize("form", ["{p}", "file://{p}"])
def test_run_refuses_artifacts_that_are_a_file(form, spec, tmp, capsys) -> None:
    """A file as ``--artifacts`` lost every artifact and crashed the sweep's end (exit 1)."""
    (tmp / "afile").write_text("x")
    err = _bad(["run", spec, "--artifacts", form.format(p=tmp / "afile")], capsys, tmp)
    assert f"--artifacts: '{tmp / 'afile'}' — must be a folder; it is a file" in err


def test_run_accepts_artifacts_in_a_new_folder_or_a_remote_store(spec, tmp, reach_run_spec) -> None:
    for where in (str(tmp / "new" / "art"), "s3://bucket/art"):
        with pytest.raises(Reached):
            cli.main(["run", spec, "--artifacts", where])
        assert reach_run_spec["artifacts"] == where and not (tmp / "new").exists()


def test_the_resume_command_repeats_every_flag_quoted() -> None:
    args = cli.build_parser().parse_args(
        ["run", "my sweeps/a.yaml", "--smoke", "--set", "config.lr=[0.1, 0.2]", "--results", "r s"]
        + ["--tracking-uri", "sqlite:///m.db", "--address", "auto", "--num-cpus", "3"]
        + ["--artifacts", "/a b", "--allow-pending", "-q"]
    )
    assert cli._resume_command(args) == (
        "ftsweep run 'my sweeps/a.yaml' --resume --smoke --set 'config.lr=[0.1, 0.2]' --results 'r s' "
        "--tracking-uri sqlite:///m.db --address auto --num-cpus 3 --artifacts '/a b' --allow-pending -q"
    )
    retried = cli.build_parser().parse_args(["run", "a.yaml", "--resume", "--retry-failed"])
    assert cli._resume_command(retried) == "ftsweep run a.yaml --resume --retry-failed"


def test_resume_refuses_another_store_than_the_version_logs_to(spec, tmp, capsys) -> None:
    """Tune restores a version's trial logger with the store the version was started with: a
    resume with another ``--tracking-uri`` logged the trials to the old store, left its sweep
    runs RUNNING and found no trial to tabulate in the new one."""
    from ftsweep.config.spec import load_spec
    from ftsweep.versions import create_version, spec_hash

    s = load_spec(spec)
    first = f"sqlite:///{tmp}/first.db"
    version = create_version(tmp / "results" / s.folder, spec_hash(s.raw, smoke=False), "", first)
    (version.experiment_dir).mkdir()
    (version.experiment_dir / "tuner.pkl").write_bytes(b"")
    err = _bad(["run", spec, "--resume", "--tracking-uri", f"sqlite:///{tmp}/other.db"], capsys, tmp)
    assert (
        f"--tracking-uri: 'sqlite:///{tmp}/other.db' — v1 logs to {first}: resume it with "
        f"--tracking-uri {first} (or start a new version with --new)"
    ) in err
    with pytest.raises(AssertionError, match="must not start"):  # the same store: on to Ray
        cli.main(["run", spec, "--resume", "--tracking-uri", f"sqlite:///{tmp}/first.db"])


def test_ctrl_c_while_the_spec_is_checked_is_one_line_and_writes_nothing(tmp) -> None:
    """A real ``ftsweep run`` process, SIGINT a second after it starts (it is importing and
    checking the spec, which takes longer): exit 130 and one line, not a traceback; no results
    folder, no store. Then the same command lets a Ctrl-C reach :func:`cli.entry` directly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp / "s.yaml").write_text(
        "name: s\nmethod: ce\ndataset: digits\npretrained: none\nconfig: {epochs: 1, labels_per_class: 3}\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftsweep", "run", "s.yaml"],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a background process of a non-interactive shell ignores SIGINT: give it back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    # 130, or killed by SIGINT (a shell shows 130 for both): CPython 3.11 ends a process whose
    # Ctrl-C landed inside exec() of a string (dataclasses build their methods so) by SIGINT at
    # exit, though the KeyboardInterrupt was caught
    assert proc.returncode in (130, -signal.SIGINT), out
    assert "Traceback" not in out and "nothing was started or written" in out, out
    assert sorted(p.name for p in tmp.iterdir()) == ["s.yaml"]


def test_ctrl_c_in_any_command_exits_130_without_a_traceback(monkeypatch, capsys) -> None:
    def interrupted(argv=None) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    with pytest.raises(SystemExit) as exit_:
        cli.entry()
    assert exit_.value.code == 130
    assert capsys.readouterr().err == "\nftsweep: interrupted (SIGINT)\n"


@pytest.fixture
def loss_selected(tmp) -> str:
    """ce on digits at two lr, two seeds each, from a spec with ``table.select_by: val/loss``
    (tag ``select_by``): lr 0.1 has the lower val/loss, lr 0.03 the higher best/val/acc."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/sel.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("sel")
    for lr, loss, acc, test in (("0.03", 0.9, 80.0, 70.0), ("0.1", 0.4, 79.0, 90.0)):
        for seed in (0, 1):
            tags = {"method": "ce", "label": "ce", "dataset": "digits", "seed": str(seed), "job": "ce-digits"}
            trial = {"trial_id": f"lr{lr}-seed{seed}", "sweep_version": "1", "select_by": "val/loss"}
            run = client.create_run(exp, tags={**tags, **trial})
            rid = run.info.run_id
            client.log_param(rid, "lr", lr)
            for key, value in (
                ("val/loss", loss + seed / 100),
                ("best/val/acc", acc),
                ("test/acc", test + seed),
            ):
                client.log_metric(rid, key, value)
            client.set_terminated(rid, "FINISHED")
    return uri


def test_table_selects_by_the_specs_select_by_as_the_runs_own_table(loss_selected, tmp, capsys) -> None:
    """The run's table.md selected lr 0.1 (lowest val/loss, the spec's ``table.select_by``);
    ``ftsweep table`` selected lr 0.03 by best/val/acc — two tables of one version."""
    base = ["table", "--experiment", "sel", "--tracking-uri", loss_selected]
    capsys.readouterr()
    assert cli.main(base) == 0
    assert "| ce | 90.50 ± 0.71 |" in capsys.readouterr().out
    assert cli.main([*base, "--select-by", "best/val/acc"]) == 0
    assert "| ce | 70.50 ± 0.71 |" in capsys.readouterr().out
    err = _bad([*base, "--select-by", "val/los"], capsys, tmp)
    assert (
        "--select-by: 'val/los' — is not a metric of the runs; they have best/val/acc, test/acc, val/loss"
        in err
    )


def test_export_writes_the_run_the_specs_selection_chose(loss_selected, tmp, capsys) -> None:
    """Export selected by best/val/acc whatever the spec said: not the configuration of the
    table. The runs have no checkpoints here, so the refusal names the trial export chose."""
    argv = ["export", "--experiment", "sel", "--tracking-uri", loss_selected, "--output", str(tmp / "x")]
    err = _bad([*argv, "--results", str(tmp / "none")], capsys, tmp)
    assert "no checkpoint_*/state.pt of trial ce-digits_lr0.1-seed0" in err, err  # lowest val/loss
    err = _bad([*argv, "--results", str(tmp / "none"), "--select-by", "best/val/acc"], capsys, tmp)
    assert "of trial ce-digits_lr0.03-seed0" in err, err  # best/val/acc 80 ties: the first seed
    err = _bad([*argv, "--layout", "analysis.coin:table4", "--rows", "lr"], capsys, tmp)
    assert "--rows: 'lr' — is not read with --layout" in err


def test_version_n_of_an_experiment_two_specs_share_says_whose_it_is(tmp, capsys) -> None:
    """s1 (ce) ran twice, s2 (scl) once, both into experiment ``shared``: ``--version 2`` is s1's
    v2 alone, and scl's row was missing with no word."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/m.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("shared")
    for sweep, method, version in (("s1", "ce", "1"), ("s2", "scl", "1"), ("s1", "ce", "2")):
        client.create_run(exp, tags={"sweep": sweep, "sweep_version": version, "ftsweep.kind": "sweep"})
        tags = {
            "method": method,
            "label": method,
            "dataset": "digits",
            "seed": "0",
            "job": f"{method}-digits",
        }
        run = client.create_run(exp, tags={**tags, "sweep": sweep, "sweep_version": version})
        client.log_metric(run.info.run_id, "best/val/acc", 50.0)
        client.log_metric(run.info.run_id, "test/acc", 60.0)
        client.set_terminated(run.info.run_id, "FINISHED")
    capsys.readouterr()
    assert cli.main(["table", "--experiment", "shared", "--tracking-uri", uri, "--version", "2"]) == 0
    err = capsys.readouterr().err
    assert "2 specs log to 'shared' and number their versions each: --version 2 is v2 of s1; " in err
    assert "s2 has no v2 (its versions: 1)" in err
