"""FixMatch grids for the target pretraining paper's stage 2 (target_pretraining.md Sec. 4.2).

The paper keeps FixMatch's CIFAR/SVHN settings (τ = 0.95, λ_u = 1, μ = 7, B = 64) but states a
learning rate of 0.1 where FixMatch uses 0.03; ``paper_lr`` tries both and lets validation pick.
The τ / λ_u / μ grids around FixMatch's values are ours.
"""

from __future__ import annotations

from typing import Any

from ray import tune

__all__ = ["CIFAR10_BUDGETS", "cifar10_budgets_lr", "lambda_u_grid", "mu_grid", "paper_lr", "threshold_grid"]

#: CIFAR-10 #40 / #250 / #1000 labels as labels per class (Table 1 columns)
CIFAR10_BUDGETS = [4, 25, 100]


def paper_lr() -> dict[str, Any]:
    """FixMatch's lr 0.03 and the paper's stated 0.1."""
    return {"lr": tune.grid_search([0.03, 0.1])}


def cifar10_budgets_lr() -> dict[str, Any]:
    """Table 1's label budgets × the two learning rates."""
    return {"labels_per_class": tune.grid_search(CIFAR10_BUDGETS), "lr": tune.grid_search([0.03, 0.1])}


def threshold_grid() -> dict[str, Any]:
    """Confidence threshold τ around FixMatch's 0.95."""
    return {"threshold": tune.grid_search([0.8, 0.9, 0.95, 0.98])}


def lambda_u_grid() -> dict[str, Any]:
    """Unlabeled loss weight λ_u around FixMatch's 1."""
    return {"lambda_u": tune.grid_search([0.5, 1.0, 2.0])}


def mu_grid() -> dict[str, Any]:
    """Unlabeled-to-labeled ratio μ around FixMatch's 7."""
    return {"mu": tune.grid_search([1, 3, 7])}
