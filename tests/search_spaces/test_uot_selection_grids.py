"""UOT specs search appendix A's head/backbone learning-rate ratio {10, 1, 0.1} (``head_lr_mult``)
beside their other axes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftsweep.config.spec import load_spec
from search_spaces import uot_selection as S

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
UOT_SPECS = [
    "uot_selection_table1a",
    "uot_selection_table1b",
    "uot_selection_table2",
    "uot_selection_table3",
    "uot_selection_table4a",
    "uot_selection_table4b",
    "uot_selection_fig3a",
    "uot_selection_fig3b",
]


def test_appendix_grids_include_the_ratio() -> None:
    for space in (S.appendix_finetune(), S.appendix_reuse()):
        assert space["head_lr_mult"] == {"grid_search": [10.0, 1.0, 0.1]}
    assert set(S.appendix_finetune()) == {"lr", "weight_decay", "head_lr_mult"}
    assert set(S.appendix_reuse()) == {"lr", "lambda_", "weight_decay", "head_lr_mult"}


@pytest.mark.parametrize("name", UOT_SPECS)
def test_every_job_searches_the_ratio(name: str) -> None:
    jobs = load_spec(SWEEPS / f"{name}.yaml").jobs()
    assert jobs
    assert all(j.space.get("head_lr_mult") == {"grid_search": [10.0, 1.0, 0.1]} for j in jobs)
    assert all("head_lr_mult" not in j.fixed for j in jobs)


# appendix Table 4 (supervised model), [lr, wd] for Fine-Tune and [lr, λ, wd] for the reuse rows
TABLE4 = {
    ("none", "cub200"): (0.003, None, 1e-5),
    ("none", "caltech101"): (0.003, None, 1e-5),
    ("random", "cub200"): (0.003, 1.0, 1e-5),
    ("random", "caltech101"): (0.003, 1.0, 0.0),
    ("uot", "cub200"): (0.003, 1.0, 1e-4),
    ("uot", "caltech101"): (0.01, 1.0, 1e-4),
}


@pytest.mark.parametrize("name", ["uot_selection_fig3a", "uot_selection_fig3b"])
def test_fig3_rows_run_their_own_table4_settings(name: str) -> None:
    # every row ran UOT's values before, the baselines included
    for job in load_spec(SWEEPS / f"{name}.yaml").jobs():
        lr, lam, wd = TABLE4[(job.fixed["selection"], job.dataset)]
        assert (job.fixed["lr"], job.fixed["weight_decay"]) == (lr, wd), job.name
        if lam is not None:
            assert job.fixed["lambda_"] == lam, job.name
