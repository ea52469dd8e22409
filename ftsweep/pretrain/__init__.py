"""Self-supervised pretraining: SimCLR (ftsweep's own default checkpoint) and the target
pretraining of stage 1 (BYOL / MoCo v2, cached per distinct config)."""

from ftsweep.pretrain.simclr import SimCLRConfig, default_checkpoint, pretrain_simclr
from ftsweep.pretrain.target import (
    TargetPretrainConfig,
    TargetPretrainer,
    pretrain_target,
    stage1_checkpoint,
    stage1_key,
    target_pool,
)

__all__ = [
    "SimCLRConfig",
    "TargetPretrainConfig",
    "TargetPretrainer",
    "default_checkpoint",
    "pretrain_simclr",
    "pretrain_target",
    "stage1_checkpoint",
    "stage1_key",
    "target_pool",
]
