"""Shared fixture of the stage-1 tests: a tiny CPU config."""

from __future__ import annotations

import pytest

from ftsweep.pretrain import TargetPretrainConfig

TINY = dict(
    epochs=3,
    batch_size=16,
    proj_dim=8,
    proj_hidden=16,
    pred_hidden=16,
    moco_queue=40,
    max_train_batches=2,
    device="cpu",
    cluster_n_init=1,
)


@pytest.fixture
def tiny():
    """``tiny(**changes)``: a small stage-1 config (3 epochs of 2 batches of 16 on the CPU)."""

    def make(**changes) -> TargetPretrainConfig:
        return TargetPretrainConfig(**{**TINY, **changes})

    return make
