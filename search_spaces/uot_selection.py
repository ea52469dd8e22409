"""Grids of the UOT data-reuse paper (uot_selection.md, Sec. 4 and appendix A).

Appendix A: lr ∈ {0.1, 0.03, 0.01, 0.003, 0.001}, λ ∈ {1.0, 0.3, 0.1}, weight decay ∈
{1e-4, 1e-5, 0}, head/backbone lr ratio ∈ {10, 1, 0.1} (the paper fixes it per dataset; the
appendix grids search it per row, see docs/deviations.md). Sec. 4.4: number of
selected classes 50–300 (Fig. 3b), K ∈ {1000, 2000} clusters (Table 2), ε_c (Fig. 4a). The ε/τ
grids around the paper's ε = 1, τ1 = 1, τ2 = 100 are ftsweep's (the paper fixes them).
"""

from __future__ import annotations

from typing import Any

from ray import tune

__all__ = [
    "EPS_C",
    "LAMBDAS",
    "LRS",
    "NUM_SELECTED",
    "WEIGHT_DECAYS",
    "appendix_finetune",
    "appendix_reuse",
    "digits_reuse",
    "fig3_num_classes",
    "fig4a_eps_c",
    "head_lr_ratio",
    "lambda_grid",
    "table2_clusters",
    "uot_eps_tau",
]

LRS = [0.1, 0.03, 0.01, 0.003, 0.001]
LAMBDAS = [1.0, 0.3, 0.1]
WEIGHT_DECAYS = [1e-4, 1e-5, 0.0]
HEAD_LR_RATIOS = [10.0, 1.0, 0.1]
NUM_SELECTED = [50, 100, 150, 200, 250, 300]
EPS_C = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]


def appendix_finetune() -> dict[str, Any]:
    """Fine-Tune rows (appendix A): [learning rate, weight decay] × head/backbone lr ratio."""
    return {
        "lr": tune.grid_search(LRS),
        "weight_decay": tune.grid_search(WEIGHT_DECAYS),
        **head_lr_ratio(),
    }


def appendix_reuse() -> dict[str, Any]:
    """Data-reuse rows (appendix A): [learning rate, λ, weight decay] × head/backbone lr ratio."""
    return {
        "lr": tune.grid_search(LRS),
        "lambda_": tune.grid_search(LAMBDAS),
        "weight_decay": tune.grid_search(WEIGHT_DECAYS),
        **head_lr_ratio(),
    }


def head_lr_ratio() -> dict[str, Any]:
    """Head/backbone learning-rate ratio (appendix A; fixed per dataset once chosen)."""
    return {"head_lr_mult": tune.grid_search(HEAD_LR_RATIOS)}


def lambda_grid() -> dict[str, Any]:
    """λ of Eq. 6/7 alone."""
    return {"lambda_": tune.grid_search(LAMBDAS)}


def uot_eps_tau() -> dict[str, Any]:
    """UOT's ε, τ1 (source marginal, small = relaxed) and τ2 (target marginal, large = covered)."""
    return {  # selection: UotSelectionConfig's (uot)
        "eps": tune.grid_search([0.1, 1.0, 10.0]),
        "tau1": tune.grid_search([0.1, 1.0, 10.0]),
        "tau2": tune.grid_search([10.0, 100.0, 1000.0]),
    }


def fig4a_eps_c() -> dict[str, Any]:
    """Fig. 4a: cost temperature ε_c of C = (1 − cos)/ε_c (paper text 0.01, public code 0.1)."""
    return {"eps_c": tune.grid_search(EPS_C)}  # selection: UotSelectionConfig's (uot)


def fig3_num_classes() -> dict[str, Any]:
    """Fig. 3b: 50–300 selected ImageNet classes (the grid needs a 1000-class source)."""
    return {"source_dataset": "imagenet", "k": tune.grid_search(NUM_SELECTED)}


def table2_clusters() -> dict[str, Any]:
    """Table 2: K = 1000 / 2000 k-means clusters of ImageNet, 200 selected, no source labels (the
    grid needs a source of at least 2000 images)."""
    return {
        "source_dataset": "imagenet",
        "source_labels": False,
        "k": 200,
        "num_clusters": tune.grid_search([1000, 2000]),
    }


def digits_reuse() -> dict[str, Any]:
    """The digits pair (30 source classes, 5 target classes): λ and lr."""
    return {"lambda_": tune.grid_search([1.0, 0.3]), "lr": tune.grid_search([0.03, 0.01])}
