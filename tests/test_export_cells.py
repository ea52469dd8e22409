"""``ftsweep export`` writes every cell or none, and never overwrites: a store of real MLflow runs
whose trial folders hold real method checkpoints (no Ray, no sweep)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

CONFIG = {"dataset": "digits", "pretrained": "none", "epochs": 2, "labels_per_class": 3}
CONFIG |= {"max_train_batches": 2, "device": "cpu", "num_workers": 0}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """One real CE checkpoint folder (state.pt + best_model.pt), copied into each trial folder."""
    from ftsweep.methods.ce import CEMethod

    folder = tmp_path_factory.mktemp("ckpt") / "checkpoint_000002"
    folder.mkdir()
    m = CEMethod(CONFIG)
    for _ in range(2):
        m.step()
    m.save_checkpoint(str(folder))
    assert {p.name for p in folder.iterdir()} == {"state.pt", "best_model.pt"}
    return folder


class Store:
    """An MLflow sqlite store with finished trial runs, as a sweep logs them."""

    def __init__(self, root: Path, checkpoint: Path) -> None:
        from mlflow.tracking import MlflowClient

        self.root, self.checkpoint = root, checkpoint
        self.uri = f"sqlite:///{root}/mlflow.db"
        self.client = MlflowClient(self.uri)
        self.exp = self.client.create_experiment("exp")
        self.trials = root / "trials"

    def run(self, label: str, trial: str, val: float, *, lr: float = 0.1, ckpt: bool = True) -> str:
        from ftsweep.methods.ce import CEMethod
        from ftsweep.tracking import flatten

        trial_dir = self.trials / trial
        trial_dir.mkdir(parents=True)
        if ckpt:
            shutil.copytree(self.checkpoint, trial_dir / self.checkpoint.name)
        tags = {"method": "ce", "label": label, "dataset": "digits", "seed": "0", "sweep_version": "1"}
        tags |= {"job": f"{label}-digits", "trial_id": trial, "trial_dir": str(trial_dir)}
        r = self.client.create_run(self.exp, tags=tags)
        rid = r.info.run_id
        for k, v in flatten(CEMethod.config_cls.from_dict({**CONFIG, "lr": lr}).to_dict()).items():
            self.client.log_param(rid, k, v)
        self.client.log_metric(rid, "best/val/acc", val)
        self.client.log_metric(rid, "test/acc", val)
        self.client.set_terminated(rid, "FINISHED")
        return rid

    def export(self, out: Path, *extra: str) -> int:
        from ftsweep.cli import main

        results = str(self.root / "results")
        args = ["export", "--experiment", "exp", "--tracking-uri", self.uri, "--results", results]
        return main([*args, "--output", str(out), *extra])


@pytest.fixture
def store(tmp_path, checkpoint) -> Store:
    return Store(tmp_path, checkpoint)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with a file's bytes (None for a folder)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def _cell_order(store: Store) -> list[str]:
    """The cells' rows in the order export writes them."""
    from ftsweep.export import select_cells
    from ftsweep.runs import load_runs

    return [r for r, _, _ in select_cells(load_runs("exp", store.uri), "method", "dataset")]


def test_export_good_case_writes_every_cell(store, capsys) -> None:
    ids = {label: store.run(label, f"t_{label}", val) for label, val in (("ce", 0.5), ("ce2", 0.6))}
    out = store.root / "out"
    assert store.export(out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ce2__digits", "ce__digits"]
    for label, rid in ids.items():
        cell = out / f"{label}__digits"
        assert sorted(p.name for p in cell.iterdir()) == ["config.json", "load.txt", "model.pt"]
        info = json.loads((cell / "config.json").read_text())
        assert (info["run_id"], info["label"], info["weights"]) == (rid, label, "selected_epoch")
        best = torch.load(store.checkpoint / "best_model.pt", weights_only=True)
        state = torch.load(cell / "model.pt", weights_only=True)
        assert state.keys() == best.keys() and all(torch.equal(state[k], best[k]) for k in best)
    assert capsys.readouterr().out.splitlines()[-1] == f"ftsweep: 2 cell(s) exported to {out}/"


def test_export_missing_checkpoint_writes_nothing(store, capsys) -> None:
    """A cell without a checkpoint, after cells that have one: exit 2, no cell written, the
    output folder not even made (nor its missing parents)."""
    store.run("ce", "t_ce", 0.5)
    store.run("ce2", "t_ce2", 0.6)
    store.run("ce3", "t_ce3", 0.7, ckpt=False)
    assert _cell_order(store)[-1] == "ce3"  # the failing cell is the last one
    out = store.root / "new" / "out"
    assert store.export(out) == 2
    assert not (store.root / "new").exists()
    trial, results = store.trials / "t_ce3", store.root / "results"
    name = "ce3-digits_t_ce3"
    looked = [str(trial)] + [
        str(results / p) for p in (f"*/v1/*/{name}", f"v1/*/{name}", f"*/{name}", name, f"**/{name}")
    ]
    assert capsys.readouterr().err == (
        f"ftsweep: error: checkpoint: no checkpoint_*/state.pt of trial {name}; "
        f"looked in: {', '.join(looked)} (give the sweep's --results)\n"
    )
    # into an existing (empty) output folder: it stays empty
    out.mkdir(parents=True)
    assert store.export(out) == 2
    assert list(out.iterdir()) == []


def test_export_unreadable_checkpoint_removes_what_it_wrote(store, capsys) -> None:
    """A checkpoint that is found but cannot be read, in the last cell: the cells written before
    it are removed again; exit 2 with one line."""
    for label, val in (("ce", 0.5), ("ce2", 0.6), ("ce3", 0.7)):
        store.run(label, f"t_{label}", val)
    last = _cell_order(store)[-1]
    state = store.trials / f"t_{last}" / store.checkpoint.name / "state.pt"
    state.write_bytes(b"not a torch file")
    out = store.root / "out"
    (out / "other").mkdir(parents=True)
    (out / "other" / "keep.txt").write_text("mine")
    before = _tree(out)
    assert store.export(out) == 2
    assert _tree(out) == before
    err = capsys.readouterr().err
    assert err.startswith(f"ftsweep: error: checkpoint: {str(state)!r} — cannot be read (")
    assert len(err.splitlines()) == 1


def test_export_colliding_folder_names_get_a_hash_suffix(store, capsys) -> None:
    """Labels that sanitise alike (``ce λ``, ``ce τ`` → ``ce____digits``) each get
    ``-<hash8>`` of their unsanitised keys; a label alone on its name keeps it."""
    ids = {
        label: store.run(label, f"t{i}", 0.5 + i / 10, lr=0.1 * (i + 1))
        for i, label in enumerate(("ce λ", "ce τ", "ce"))
    }
    out = store.root / "out"
    assert store.export(out) == 0

    def suffixed(label: str) -> str:
        key = json.dumps([[label], ["digits"]], ensure_ascii=False)
        return f"ce____digits-{hashlib.sha1(key.encode()).hexdigest()[:8]}"

    names = {"ce λ": suffixed("ce λ"), "ce τ": suffixed("ce τ"), "ce": "ce__digits"}
    assert names["ce λ"] != names["ce τ"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names.values())
    for label, name in names.items():
        info = json.loads((out / name / "config.json").read_text())
        assert (info["run_id"], info["label"], info["row"]) == (ids[label], label, label)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"ftsweep: 3 cell(s) exported to {out}/"
    for label in ("ce λ", "ce τ"):  # each cell's line names its row, not only the method
        assert any(ln.startswith(f"{out / names[label]}  {label} × digits: ce seed=") for ln in lines), lines
    # the same names on every export
    assert store.export(store.root / "again") == 0
    assert sorted(p.name for p in (store.root / "again").iterdir()) == sorted(names.values())


def test_export_refuses_an_existing_cell_folder(store, capsys) -> None:
    """A second export into the same folder: exit 2 naming the cell folders already there, and
    nothing of the first export changed; a folder of another export there is left alone."""
    store.run("ce", "t_ce", 0.5)
    store.run("ce2", "t_ce2", 0.6)
    out = store.root / "out"
    (out / "stale__cell").mkdir(parents=True)
    assert store.export(out) == 0
    before = _tree(out)
    assert sorted(p.name for p in out.iterdir()) == ["ce2__digits", "ce__digits", "stale__cell"]
    capsys.readouterr()
    assert store.export(out) == 2
    assert _tree(out) == before
    assert capsys.readouterr().err == (
        f"ftsweep: error: --output: {str(out)!r} — already holds ce__digits/, ce2__digits/ (an earlier "
        "export?); nothing is overwritten: remove it, give another --output, or --force to replace "
        "earlier exported cells\n"
    )
    # one cell folder in the way (even an empty one) is enough, and no other cell is written
    shutil.rmtree(out / "ce2__digits")
    shutil.rmtree(out / "ce__digits")
    (out / "ce2__digits").mkdir()
    before = _tree(out)
    assert store.export(out) == 2
    assert _tree(out) == before
    assert "already holds ce2__digits/ (an earlier" in capsys.readouterr().err


def test_force_replaces_earlier_exported_cells_only(store, capsys) -> None:
    """``--force``: the cells an earlier export wrote are replaced (a new version's runs); a
    folder in the way that is not an exported cell is refused, and nothing changes."""
    store.run("ce", "t_ce", 0.5)
    out = store.root / "out"
    (out / "stale__cell").mkdir(parents=True)
    (out / "stale__cell" / "keep.txt").write_text("mine")
    assert store.export(out) == 0
    first = json.loads((out / "ce__digits" / "config.json").read_text())
    store.run("ce", "t_ce_new", 0.9, lr=0.2)  # a better configuration of the same cell
    assert store.export(out, "--force") == 0
    again = json.loads((out / "ce__digits" / "config.json").read_text())
    assert first["run_id"] != again["run_id"] and again["config"]["lr"] == 0.2
    assert sorted(p.name for p in out.iterdir()) == ["ce__digits", "stale__cell"]  # no spare left
    assert (out / "stale__cell" / "keep.txt").read_text() == "mine"
    capsys.readouterr()
    (out / "ce__digits" / "notes.txt").write_text("the user's")  # no longer only an export's files
    before = _tree(out)
    assert store.export(out, "--force") == 2
    assert _tree(out) == before
    assert "already holds ce__digits/ (not an exported cell: --force replaces only those)" in (
        capsys.readouterr().err
    )


def test_force_puts_the_earlier_cells_back_when_the_export_fails(store, capsys) -> None:
    for label, val in (("ce", 0.5), ("ce2", 0.6)):
        store.run(label, f"t_{label}", val)
    out = store.root / "out"
    assert store.export(out) == 0
    before = _tree(out)
    last = _cell_order(store)[-1]
    (store.trials / f"t_{last}" / store.checkpoint.name / "state.pt").write_bytes(b"not a torch file")
    assert store.export(out, "--force") == 2
    assert _tree(out) == before  # the earlier cells, byte for byte, and no spare folder
    assert "cannot be read (" in capsys.readouterr().err


def test_unique_names_refuses_cells_that_still_share_a_folder(tmp_path) -> None:
    """Keys that print alike (1 and "1") cannot be told apart by a hash of their text: refused."""
    from ftsweep.config.errors import ConfigError
    from ftsweep.export import _folder_name, _Planned, _unique_names

    planned = [
        _Planned(r, "digits", _folder_name(r, "digits"), None, 0, "ce", object, tmp_path, {})
        for r in (1, "1")
    ]
    with pytest.raises(ConfigError) as e:
        _unique_names(planned, tmp_path)
    assert str(e.value) == (
        f"--output: {str(tmp_path)!r} — cells (1, 'digits') and ('1', 'digits') would both be exported "
        "to 1__digits-" + hashlib.sha1(b'[["1"], ["digits"]]').hexdigest()[:8] + "/"
    )


def test_force_refuses_a_spare_an_interrupted_export_left(store, capsys) -> None:
    """An export killed between setting a cell aside and removing it leaves ``.<cell>.replaced/``
    (the cell as it was); ``--force`` then names it, as one line, and changes nothing."""
    store.run("ce", "t_ce", 0.5)
    out = store.root / "out"
    assert store.export(out) == 0
    shutil.copytree(out / "ce__digits", out / ".ce__digits.replaced")  # what the kill left
    before = _tree(out)
    capsys.readouterr()
    assert store.export(out, "--force") == 2
    assert _tree(out) == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--output: {str(out)!r} — holds .ce__digits.replaced/, the cell ce__digits/ as an " in err


def test_layout_cells_of_selections_over_different_keys_are_all_kept() -> None:
    """Core-tuning's Table 6: a row of λ_n values (λ_p held at 0.8) and one of λ_p values (λ_n
    held): both select cells keyed (0.0, digits) and (0.2, digits), and only the λ_n row's two
    were exported, silently. Each now names its key."""
    import pandas as pd

    from ftsweep.export import layout_cells
    from ftsweep.tables import select_configs

    rows = []
    for i, (ln, lp) in enumerate([(0.0, 0.8), (0.2, 0.8), (0.8, 0.0), (0.8, 0.2)]):
        rows.append({"run_id": f"r{i}", "method": "ct", "dataset": "digits", "seed": 0, "lambda_n": ln,
                     "lambda_p": lp, "best/val/acc": 50.0 + i, "test/acc": 60.0 + i})  # fmt: skip
    df = pd.DataFrame(rows)

    def layout(runs: pd.DataFrame) -> None:
        select_configs(runs[runs.lambda_p == 0.8], ["lambda_n", "dataset"])
        select_configs(runs[runs.lambda_n == 0.8], ["lambda_p", "dataset"])
        select_configs(runs[runs.lambda_n == 0.8], ["lambda_p", "dataset"])  # e.g. a time-cost row

    got = {(r, c): run["run_id"] for r, c, run in layout_cells(layout, df)}
    assert got == {
        ("lambda_n=0.0", "digits"): "r0",
        ("lambda_n=0.2", "digits"): "r1",
        ("lambda_p=0.0", "digits"): "r2",
        ("lambda_p=0.2", "digits"): "r3",
    }
