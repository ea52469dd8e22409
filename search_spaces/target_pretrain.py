"""Stage-1 target pretraining grids (target_pretraining.md Sec. 4.2, Table 8, Table 10, Fig. 5).

The paper fixes its stage-1 recipe (LARS, base lr 0.3 at batch 256, 300 epochs, λ = 1e-2) and
varies only the objective (Table 8) and the number of epochs (Fig. 5); the lr, λ and τ_base
grids around the recipe are ours.
"""

from __future__ import annotations

from typing import Any

from ray import tune

__all__ = [
    "FIG5_EPOCHS",
    "fig5_epochs",
    "l2_init_grid",
    "lr_grid",
    "table8_objective",
    "tau_base_grid",
]

#: Fig. 5 evaluates stage-1 weights "from 0 to 250 epochs"; epoch 0 is the run without stage 1
FIG5_EPOCHS = [50, 100, 150, 200, 250]


def lr_grid() -> dict[str, Any]:
    """Base lr (at batch 256) around the paper's 0.3 = BYOL's ImageNet rate / 10."""
    return {"lr": tune.grid_search([0.03, 0.1, 0.3, 1.0])}


def l2_init_grid() -> dict[str, Any]:
    """λ of Eq. 3 around the paper's 1e-2; 0 is plain BYOL without the pull to Φ_pre."""
    return {"l2_init": tune.grid_search([0.0, 1e-3, 1e-2, 1e-1])}


def tau_base_grid() -> dict[str, Any]:
    """BYOL's base target momentum (0.996) and neighbours."""
    return {"tau_base": tune.grid_search([0.99, 0.996, 0.999])}


def fig5_epochs() -> dict[str, Any]:
    """Fig. 5: stage-1 length (downstream accuracy against target-pretraining epochs)."""
    return {"epochs": tune.grid_search(FIG5_EPOCHS)}


def table8_objective() -> dict[str, Any]:
    """Table 8: BYOL vs MoCo v2 as the target-pretraining objective."""
    return {"objective": tune.grid_search(["byol", "moco_v2"])}
