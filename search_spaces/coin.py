"""COIN's grids (coin.md Sec. 4.2, 5.1): τ ∈ {0.07, 0.1, 0.3, 0.5, 0.7}, α ∈ {0.1, …, 0.9}, λ = 0.1."""

from __future__ import annotations

from typing import Any

from ray import tune

__all__ = ["TEMPERATURES", "ALPHAS", "paper_grid", "table1_alpha", "table3_temperature", "table4_alpha"]

TEMPERATURES = [0.07, 0.1, 0.3, 0.5, 0.7]
ALPHAS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def paper_grid() -> dict[str, Any]:
    """Every (τ, α) pair the paper considers (λ: CoinConfig's, the paper's 0.1)."""
    return {"temperature": tune.grid_search(TEMPERATURES), "alpha": tune.grid_search(ALPHAS)}


def table1_alpha() -> dict[str, Any]:
    """Table 1: α is chosen per dataset (Sec. 4.2); τ and λ: CoinConfig's (the paper's 0.3, 0.1)."""
    return {"alpha": tune.grid_search(ALPHAS)}


def table3_temperature() -> dict[str, Any]:
    """Table 3 (CIFAR-10): τ sweep at α = 0.6 (λ: CoinConfig's, the paper's 0.1)."""
    return {"temperature": tune.grid_search(TEMPERATURES), "alpha": 0.6}


def table4_alpha() -> dict[str, Any]:
    """Table 4 (CIFAR-10): α sweep (τ and λ: CoinConfig's, the paper's 0.3 and 0.1)."""
    return {"alpha": tune.grid_search(ALPHAS)}
