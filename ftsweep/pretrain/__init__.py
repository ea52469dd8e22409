"""Self-supervised pretraining: SimCLR (ftsweep's own default checkpoint) and the target
pretraining of stage 1 (BYOL / MoCo v2, cached per distinct config).

Modules: :mod:`~ftsweep.pretrain.simclr`; stage 1 in :mod:`~ftsweep.pretrain.config`
(``TargetPretrainConfig``), :mod:`~ftsweep.pretrain.pool` (the pool and its two-view batches),
:mod:`~ftsweep.pretrain.moco` (the MoCo queue), :mod:`~ftsweep.pretrain.trainer`
(``TargetPretrainer``) and :mod:`~ftsweep.pretrain.stage1` (the cached build).
"""

from ftsweep.pretrain.config import TargetPretrainConfig
from ftsweep.pretrain.moco import MoCoQueue
from ftsweep.pretrain.pool import target_pool
from ftsweep.pretrain.simclr import SimCLRConfig, default_checkpoint, pretrain_simclr
from ftsweep.pretrain.stage1 import pretrain_target, stage1_checkpoint, stage1_key
from ftsweep.pretrain.trainer import TargetPretrainer

__all__ = [
    "MoCoQueue",
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
