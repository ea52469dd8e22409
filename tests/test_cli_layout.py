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
