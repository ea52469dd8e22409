"""``ftsweep run`` renders the spec's paper layout (a registered method's) after the generic table."""

from __future__ import annotations

import sys

import pandas as pd

from ftsweep import cli


def test_spec_layout_is_printed_and_written(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "mylayouts.py").write_text(
        "import pandas as pd\n"
        "def table(df):\n"
        "    return pd.DataFrame({'acc': [df['x'].mean()]}, index=pd.Index(['mean'], name='row'))\n"
        "def broken(df):\n"
        "    return df['no_such_column']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mylayouts", None)
    import mylayouts

    import ftsweep.registry as reg

    ce = reg.methods()["ce"]
    record = reg.MethodRecord(
        "mine", ce.config_cls, ce.trainable, layouts=(mylayouts.table, mylayouts.broken)
    )
    monkeypatch.setattr(reg, "_REGISTRY", reg.Registry([*reg.methods().values(), record]))
    df = pd.DataFrame({"x": [1.0, 2.0, 6.0]})
    out = tmp_path / "res"
    out.mkdir()
    cli._spec_layout("mylayouts:table", df, out)
    text = (out / "paper_table.md").read_text()
    assert "| mean | 3.0 |" in text  # mean of 1, 2, 6
    assert "Paper layout (mylayouts:table)" in capsys.readouterr().out
    # a layout that does not fit these runs is reported; the finished sweep is not failed
    (out / "paper_table.md").unlink()
    cli._spec_layout("mylayouts:broken", df, out)
    assert "not rendered: KeyError" in capsys.readouterr().out
    assert not (out / "paper_table.md").exists()


def _stage1_store(uri: str, experiment: str, epochs: list[int], sweep: str = "tp_table10") -> None:
    """Finished stage-1 runs (no validation split: no ``best/val/acc``) of version 1 of spec
    ``sweep``, seeds 0-1 per entry of ``epochs`` on cifar10."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    exp = exp.experiment_id if exp is not None else client.create_experiment(experiment)
    for e in epochs:
        for seed in (0, 1):
            tags = {"method": "target_pretrain", "label": "target_pretrain", "dataset": "cifar10"}
            tags |= {"sweep": sweep, "seed": str(seed), "sweep_version": "1"}
            run = client.create_run(exp, tags=tags)
            rid = run.info.run_id
            client.log_param(rid, "epochs", str(e))
            client.log_param(rid, "objective", "byol")
            for name, value in (("train_acc", 50.0), ("test_acc", 40.0)):
                client.log_metric(rid, f"cluster/{name}_before", value)
                client.log_metric(rid, f"cluster/{name}", value + 4 * seed + e / 100)
            client.set_terminated(rid, "FINISHED")


def test_a_stage1_spec_gets_its_table_and_its_layout(tmp_path, capsys) -> None:
    """sweeps/target_pretraining_table10.yaml: stage 1 has no ``best/val/acc``, so the table
    selects nothing (one configuration a cell) and the paper layout follows. Before, the table's
    default selection metric was missing and the layout was never made."""
    import argparse

    from ftsweep.config.spec import load_spec

    spec = load_spec("sweeps/target_pretraining_table10.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _stage1_store(uri, spec.experiment, epochs=[300])
    out = tmp_path / "v1"
    out.mkdir()
    cli._spec_table(spec, argparse.Namespace(tracking_uri=uri), out, 1)
    printed = capsys.readouterr().out
    assert "cluster/test_acc (mean ± std over seeds; one configuration a cell; v1)" in printed
    assert "| target_pretrain | 45.00 ± 2.83 (n=2/3) |" in (out / "table.md").read_text()  # 43, 47 of 3 seeds
    layout = (out / "paper_table.md").read_text()  # train / test before (-) and after (BYOL)
    assert "| - | 50.00 ± 0.00 / 40.00 ± 0.00 |" in layout
    assert "| BYOL | 55.00 ± 2.83 / 45.00 ± 2.83 |" in layout


def test_a_runs_table_holds_its_own_spec_when_specs_share_an_experiment(tmp_path, capsys) -> None:
    """Each spec numbers its own versions: the v1 of another spec logging to the same
    ``experiment:`` (here with other results) was pooled into this spec's v1 table."""
    import argparse

    from ftsweep.config.spec import load_spec

    spec = load_spec("sweeps/target_pretraining_table10.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _stage1_store(uri, spec.experiment, epochs=[300])
    _stage1_store(uri, spec.experiment, epochs=[100], sweep="another_spec")
    out = tmp_path / "v1"
    out.mkdir()
    cli._spec_table(spec, argparse.Namespace(tracking_uri=uri), out, 1)
    assert "| target_pretrain | 45.00 ± 2.83 (n=2/3) |" in (out / "table.md").read_text()


def test_a_table_the_runs_cannot_fill_still_gets_its_layout(tmp_path, capsys) -> None:
    import argparse

    from ftsweep.config.spec import load_spec

    spec = load_spec("sweeps/target_pretraining_table10.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _stage1_store(uri, spec.experiment, epochs=[100, 300])  # two configurations, nothing selects
    out = tmp_path / "v1"
    out.mkdir()
    cli._spec_table(spec, argparse.Namespace(tracking_uri=uri), out, 1)
    printed = capsys.readouterr().out
    assert "ftsweep: no table: cell ('target_pretrain', 'cifar10') holds 2 configurations" in printed
    assert not (out / "table.md").exists()
    assert "Paper layout (analysis.target_pretraining:table10)" in printed


def test_the_table_command_reads_stage1_runs_the_same_way(tmp_path, capsys) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _stage1_store(uri, "s1", epochs=[300])
    args = ["table", "--experiment", "s1", "--metric", "cluster/test_acc", "--tracking-uri", uri]
    assert cli.main(args) == 0
    assert "| target_pretrain | 45.00 ± 2.83 |" in capsys.readouterr().out
    _stage1_store(uri, "s2", epochs=[100, 300])
    assert cli.main([*args[:2], "s2", *args[3:]]) == 2
    assert "holds 2 configurations" in capsys.readouterr().err


def _two_lrs() -> pd.DataFrame:
    """ce and scl at two learning rates, two seeds: lr 0.01 has the lower val/loss and test
    accuracy 80 (lr 0.1: 60); lr 0.1 the higher best/val/acc. scl's losses are 1 higher."""
    rows = []
    for method, shift in (("ce", 0.0), ("scl", 1.0)):
        for lr, loss, acc in ((0.01, 1.0, 50.0), (0.1, 2.0, 60.0)):
            for seed in (0, 1):
                rows.append(
                    {
                        "method": method,
                        "dataset": "digits",
                        "seed": seed,
                        "lr": lr,
                        "val/loss": loss + shift,
                        "test/loss": loss + shift + seed,
                        "best/val/acc": acc,
                        "test/acc": acc + 30 * (lr == 0.01),
                    }
                )
    df = pd.DataFrame(rows)
    df.attrs["params"] = ["lr"]
    return df


def test_a_loss_selects_and_ranks_downwards(tmp_path, capsys) -> None:
    """``select_by: val/loss`` keeps each cell's lowest mean (before: the highest, the worst), and
    a loss metric's best row is its lowest (bold; the Δ row from the lowest other row)."""
    from ftsweep.config.spec import parse_spec

    base = {"name": "t", "methods": [{"method": "ce"}, {"method": "scl"}], "dataset": "digits",
            "pretrained": "none", "seeds": [0, 1]}  # fmt: skip
    spec = parse_spec({**base, "table": {"select_by": "val/loss", "baseline": "ce"}})
    cli._plain_table(spec, _two_lrs(), tmp_path, 1)
    text = (tmp_path / "table.md").read_text()
    assert "| ce | **80.00 ± 0.00** |" in text and "| scl | **80.00 ± 0.00** |" in text  # lr 0.01
    spec = parse_spec({**base, "table": {"metric": "test/loss", "baseline": "ce"}})
    cli._plain_table(spec, _two_lrs(), tmp_path, 1)  # selected on best/val/acc: lr 0.1
    text = (tmp_path / "table.md").read_text()
    assert "| ce | **2.50 ± 0.71** |" in text and "| scl | 3.50 ± 0.71 |" in text
    assert "| Δ vs ce | +1.00 |" in text


def test_tables_an_artifact_store_refuses_stay_on_disk(tmp_path, capsys) -> None:
    """The version's run attaches the tables at the very end of a sweep; an artifact store that
    refuses them raised there (exit 1 after every trial had finished)."""
    import argparse

    from mlflow.tracking import MlflowClient

    from ftsweep.config.spec import load_spec

    spec = load_spec("sweeps/target_pretraining_table10.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _stage1_store(uri, spec.experiment, epochs=[300])
    (tmp_path / "afile").write_text("x")
    client = MlflowClient(uri)
    exp = client.create_experiment("sweep-runs", artifact_location=str(tmp_path / "afile"))
    run_id = client.create_run(exp).info.run_id
    out = tmp_path / "v1"
    out.mkdir()
    cli._spec_table(spec, argparse.Namespace(tracking_uri=uri), out, 1, run_id)
    assert (out / "table.md").is_file()
    assert "ftsweep: tables not attached to the MLflow run (" in capsys.readouterr().out
