"""SCHaNe's grids (schane.md App. A.2, Sec. 5): λ ∈ {0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0},
τ ∈ {0.1, 0.3, 0.5, 0.7}; the paper's optimum is τ = 0.5, λ = 0.9."""

from __future__ import annotations

from typing import Any

from ray import tune

__all__ = ["LAMBDAS", "TEMPERATURES", "fig2_lambda", "paper_grid", "table3_ablation"]

LAMBDAS = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
TEMPERATURES = [0.1, 0.3, 0.5, 0.7]


def paper_grid() -> dict[str, Any]:
    """The validation grid search of App. A.2 (Tables 1 and 2 select within it)."""
    return {"lambda_": tune.grid_search(LAMBDAS), "temperature": tune.grid_search(TEMPERATURES)}


def fig2_lambda() -> dict[str, Any]:
    """Fig. 2: λ sweep (τ: SchaneConfig's, the paper's 0.5)."""
    return {"lambda_": tune.grid_search(LAMBDAS)}


def table3_ablation() -> dict[str, Any]:
    """Table 3: CE, CE + SimCLR, CE + SupCon and SCHaNe (λ and τ: SchaneConfig's, the paper's
    0.9 and 0.5)."""
    return {"objective": tune.grid_search(["ce", "ce_simclr", "ce_supcon", "schane"])}
