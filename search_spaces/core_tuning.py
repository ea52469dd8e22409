"""Core-tuning's grids (core_tuning.md §5.1, App. C.2, Fig. 3, Table 2, Table 6).

Per dataset, η and α are chosen on validation from {0.1, 1, 10}; λ_p = λ_n = 0.8 and τ = 0.07
are fixed (§5.1). Fig. 3 varies η and α one at a time on ImageNet-20; its text names η = 0.5 and
α = 5 as the best points, so those axes are {0.1, 0.5, 1, 5, 10} and each sweep holds the other
factor at its reported best. Table 6 varies λ_n and λ_p one at a time over {0, 0.2, …, 0.8},
the other held at 0.8.
"""

from __future__ import annotations

from typing import Any

from ray import tune

from ftsweep.config.space import field_default
from ftsweep.methods.core_tuning import CoreTuningConfig

__all__ = [
    "ALPHAS",
    "ETAS",
    "FIG3_VALUES",
    "THRESHOLDS",
    "fig3_alpha",
    "fig3_eta",
    "paper_grid",
    "table2_con_eta",
    "table2_mixup_alpha",
    "table6_lambda_n",
    "table6_lambda_p",
    "table6_lambda_p_unheld",
    "table6_thresholds",
]

ETAS = [0.1, 1.0, 10.0]
ALPHAS = [0.1, 1.0, 10.0]
FIG3_VALUES = [0.1, 0.5, 1.0, 5.0, 10.0]
THRESHOLDS = [0.0, 0.2, 0.4, 0.6, 0.8]


def paper_grid() -> dict[str, Any]:
    """Table 1 (and Table 2 rows 4–5): η × α ∈ {0.1, 1, 10}² (λ_p, λ_n, τ: CoreTuningConfig's, the
    paper's 0.8, 0.8, 0.07)."""
    return {"eta": tune.grid_search(ETAS), "mixup_alpha": tune.grid_search(ALPHAS)}


def table2_con_eta() -> dict[str, Any]:
    """Table 2 row 2 (CE + L_con, no mixup): only η is a hyperparameter."""
    return {"eta": tune.grid_search(ETAS)}


def table2_mixup_alpha() -> dict[str, Any]:
    """Table 2 row 3 (CE + manifold mixup, no contrastive term): only α is a hyperparameter."""
    return {"mixup_alpha": tune.grid_search(ALPHAS), "eta": 0.0}


def fig3_eta() -> dict[str, Any]:
    """Fig. 3 (left): η sweep on ImageNet-20 at α = 5 (λ_p, λ_n: the config's)."""
    return {"eta": tune.grid_search(FIG3_VALUES), "mixup_alpha": 5.0}


def fig3_alpha() -> dict[str, Any]:
    """Fig. 3 (right): α sweep on ImageNet-20 at η = 0.5 (λ_p, λ_n: the config's)."""
    return {"mixup_alpha": tune.grid_search(FIG3_VALUES), "eta": 0.5}


def table6_lambda_n() -> dict[str, Any]:
    """Table 6, row "negative pair threshold": λ_n sweep (λ_p: the config's, the paper's 0.8)."""
    return {"lambda_n": tune.grid_search(THRESHOLDS)}


def table6_lambda_p() -> dict[str, Any]:
    """Table 6, row "positive pair threshold": λ_p sweep (λ_n: the config's, the paper's 0.8)."""
    return {"lambda_p": tune.grid_search(THRESHOLDS)}


def table6_lambda_p_unheld() -> dict[str, Any]:
    """:func:`table6_lambda_p` without λ_p = 0.8: beside :func:`table6_lambda_n`, whose search
    trains (λ_n, λ_p) = (0.8, 0.8) already, the row's 0.8 entry is that configuration's runs
    (``analysis.core_tuning.table6``), so it is not trained twice."""
    held = field_default(CoreTuningConfig, "lambda_p")  # where λ_n's row holds λ_p (0.8)
    return {"lambda_p": tune.grid_search([v for v in THRESHOLDS if v != held])}


def table6_thresholds() -> dict[str, Any]:
    """The full λ_n × λ_p grid (25 configs); contains both one-at-a-time rows of Table 6."""
    return {"lambda_n": tune.grid_search(THRESHOLDS), "lambda_p": tune.grid_search(THRESHOLDS)}
