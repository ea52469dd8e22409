"""``ftsweep export``: a real tiny sweep, then each cell's selected weights loaded with plain torch."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

SPEC = """
name: exp
methods:
  - method: ce
    search_space: {lr: [0.05, 0.2]}
  - method: scl
dataset: digits
backbone: small_cnn
pretrained: none
config: {epochs: 3, labels_per_class: 3, max_train_batches: 2, device: cpu}
seeds: [0, 1]
resources: {cpu: 1, gpu: 0}
"""


@pytest.fixture(scope="module")
def sweep(ray_session, tmp_path_factory):
    from ftsweep.config.spec import load_spec
    from ftsweep.runner import run_spec

    tmp = tmp_path_factory.mktemp("export")
    (tmp / "exp.yaml").write_text(textwrap.dedent(SPEC))
    uri = f"sqlite:///{tmp}/mlflow.db"
    result = run_spec(load_spec(tmp / "exp.yaml"), results_dir=tmp / "results", tracking_uri=uri, log=False)
    assert (result.trials, result.errors) == (6, 0)
    return uri, tmp


def _batch() -> torch.Tensor:
    from ftsweep.data import build_data

    data = build_data("digits", seed=0, labels_per_class=3)
    return torch.stack([data.test[i][0] for i in range(16)])


def test_export_cli_and_plain_torch_load(sweep) -> None:
    from ftsweep.cli import main
    from ftsweep.methods.ce import CEMethod
    from ftsweep.methods.scl import SclMethod
    from ftsweep.runs import load_runs
    from ftsweep.tables import select_configs

    uri, tmp = sweep
    out = tmp / "export"
    args = ["export", "--experiment", "exp", "--tracking-uri", uri, "--results", str(tmp / "results")]
    assert main([*args, "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ce__digits", "scl__digits"]

    runs = load_runs("exp", uri)
    chosen = select_configs(runs, ["method", "dataset"])
    for name, cls in (("ce", CEMethod), ("scl", SclMethod)):
        cell = out / f"{name}__digits"
        info = json.loads((cell / "config.json").read_text())
        # the tables' configuration, then its best seed on best/val/acc
        mine = chosen[chosen.method == name]
        assert len(mine) == 2 and mine["lr"].nunique() == 1
        best = mine.loc[mine["best/val/acc"].idxmax()]
        assert info["run_id"] == best["run_id"] and info["seed"] == best["seed"]
        assert info["config"]["lr"] == best["lr"] and info["method"] == name
        assert info["metrics"]["best/val/acc"] == pytest.approx(best["best/val/acc"])
        assert info["weights"] == "selected_epoch"
        assert info["weights_epoch"] == int(best["best/epoch"])
        assert f"from ftsweep.methods.{name} import {cls.__name__}" in (cell / "load.txt").read_text()

        # plain torch: a weights-only file, into a freshly built model of the method
        state = torch.load(cell / "model.pt", weights_only=True)
        config = {**info["config"], "pretrained": "none"}
        fresh = cls(config)
        fresh.model.load_state_dict(state)
        # the trial's checkpoint restored by ftsweep: its selected epoch's weights
        restored = cls(config)
        restored.load_checkpoint(info["checkpoint"])
        assert restored.tracker.epoch == info["weights_epoch"]
        restored.model.load_state_dict(restored.best_model)
        x = _batch()
        fresh.model.eval(), restored.model.eval()
        with torch.no_grad():
            a = fresh.model["classifier"](fresh.model["backbone"](x))
            b = restored.predict(x)
        assert torch.equal(a, b)
        # the selected epoch's test accuracy is reproduced by the exported weights
        fresh.model.to(fresh.device)
        assert fresh.evaluate_split("test")["test/acc"] == pytest.approx(info["metrics"]["test/acc"])


def test_layout_cells_are_the_layouts_selection(sweep) -> None:
    """--layout: the cells (and runs) of every selection a paper layout makes."""
    from ftsweep.export import layout_cells, select_cells
    from ftsweep.runs import load_runs
    from ftsweep.tables import fill_missing_params, summarize

    uri, _ = sweep
    runs = load_runs("exp", uri)
    by_keys = {(r, c): run["run_id"] for r, c, run in select_cells(runs, "method", "dataset")}
    layout = lambda df: summarize(fill_missing_params(df), "method", "dataset")  # noqa: E731
    got = {(r, c): run["run_id"] for r, c, run in layout_cells(layout, runs)}
    assert got == by_keys and len(got) == 2
    flipped = {
        (r, c): run["run_id"]
        for r, c, run in layout_cells(lambda df: summarize(df, "dataset", "method"), runs)
    }
    assert flipped == {(c, r): v for (r, c), v in by_keys.items()}


def test_export_bad_input(sweep, capsys) -> None:
    from ftsweep.cli import main

    uri, tmp = sweep
    base = ["export", "--tracking-uri", uri, "--output", str(tmp / "bad")]
    assert main([*base, "--experiment", "nope"]) == 2
    assert main([*base, "--experiment", "exp", "--rows", "no_such_col"]) == 2
    # the run's trial_dir tag finds the checkpoints wherever --results points …
    assert main([*base, "--experiment", "exp", "--results", str(tmp / "elsewhere")]) == 0
    # … and a trial folder that is gone is an error naming where it looked
    tune = tmp / "results" / "exp" / "v1" / "tune"
    moved = tmp / "moved"
    tune.rename(moved)
    try:
        assert main([*base, "--experiment", "exp", "--results", str(tmp / "elsewhere")]) == 2
    finally:
        moved.rename(tune)
    err = capsys.readouterr().err
    assert "no MLflow experiment 'nope'" in err and "no_such_col" in err and "no checkpoint" in err


def test_selected_epoch_weights_kept_beside_the_checkpoint(tmp_path: Path) -> None:
    """best_model.pt = the model of the epoch the tracker selected, whichever it is; a restore
    brings it back."""
    from ftsweep.methods.ce import CEMethod

    config = {"dataset": "digits", "pretrained": "none", "epochs": 4, "labels_per_class": 3, "lr": 0.5}
    config |= {"max_train_batches": 2, "device": "cpu", "num_workers": 0}
    m = CEMethod(config)
    states = {}
    for _ in range(4):
        m.step()
        states[m.epoch] = {k: v.clone() for k, v in m.model.state_dict().items()}
    m.save_checkpoint(str(tmp_path))
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)
    sel = states[m.tracker.epoch]
    assert best.keys() == sel.keys() and all(torch.equal(best[k], sel[k]) for k in sel)
    again = CEMethod(config)
    again.load_checkpoint(str(tmp_path))
    assert all(torch.equal(again.best_model[k], sel[k]) for k in sel)


def test_export_across_versions_takes_each_cells_selected_run_wherever_it_ran(sweep) -> None:
    """``--version all``: a second version adds a seed; each cell's run is chosen over both
    versions (each trial identity once) and its weights come from its own version's folder."""
    from ftsweep.cli import main
    from ftsweep.config.spec import load_spec
    from ftsweep.export import select_cells
    from ftsweep.runner import run_spec
    from ftsweep.runs import load_runs

    uri, tmp = sweep
    spec = load_spec(tmp / "exp.yaml", overrides=["seeds=[2]"])
    result = run_spec(spec, results_dir=tmp / "results", tracking_uri=uri, log=False, new=True)
    assert (result.version, result.trials, result.errors) == (2, 3, 0)
    runs = load_runs("exp", uri, version="all")
    assert len(runs) == 9 and set(runs["sweep_version"].astype(str)) == {"1", "2"}
    expected = {(r, c): run["run_id"] for r, c, run in select_cells(runs, "method", "dataset")}
    out = tmp / "export_all"
    args = ["export", "--experiment", "exp", "--tracking-uri", uri, "--results", str(tmp / "results")]
    assert main([*args, "--version", "all", "--output", str(out)]) == 0
    for (r, c), run_id in expected.items():
        info = json.loads((out / f"{r}__{c}" / "config.json").read_text())
        assert info["run_id"] == run_id
        version = runs.loc[runs.run_id == run_id, "sweep_version"].iloc[0]
        assert f"/v{version}/" in info["checkpoint"]  # the run's own version's checkpoint
    assert main([*args, "--version", "2", "--output", str(tmp / "export_v2")]) == 0
    v2 = json.loads((tmp / "export_v2" / "scl__digits" / "config.json").read_text())
    assert v2["seed"] == 2  # version 2 alone has only seed 2
