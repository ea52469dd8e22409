"""Ray Tune Trainable and registry record of stage-1 target pretraining
(:mod:`ftsweep.methods.target_pretrain`)."""

from __future__ import annotations

import analysis.target_pretraining
import search_spaces.target_pretrain
from ftsweep.methods.target_pretrain import TargetPretrainConfig, TargetPretrainMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class TargetPretrainTrainable(MethodTrainable):
    method_cls = TargetPretrainMethod


METHOD = MethodRecord(
    name="target_pretrain",
    config_cls=TargetPretrainConfig,
    trainable=TargetPretrainTrainable,
    search_space=search_spaces.target_pretrain,
    layouts=(analysis.target_pretraining.table10,),
    smoke={"batch_size": 64, "proj_hidden": 64, "pred_hidden": 64, "moco_queue": 256, "cluster_n_init": 1},
)
