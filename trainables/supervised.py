"""Ray Tune Trainable and registry record of supervised stage 2 (:mod:`ftsweep.methods.supervised`)."""

from __future__ import annotations

import analysis.target_pretraining
import search_spaces.fixmatch
from ftsweep.methods.stage2 import STAGE2_SMOKE
from ftsweep.methods.supervised import SupervisedConfig, SupervisedMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class SupervisedTrainable(MethodTrainable):
    method_cls = SupervisedMethod


METHOD = MethodRecord(
    name="supervised",
    config_cls=SupervisedConfig,
    trainable=SupervisedTrainable,
    search_space=search_spaces.fixmatch,
    layouts=(
        analysis.target_pretraining.table1,
        analysis.target_pretraining.table2,
        analysis.target_pretraining.table8,
        analysis.target_pretraining.table9,
        analysis.target_pretraining.fig5,
        analysis.target_pretraining.digits,
    ),
    smoke=STAGE2_SMOKE,
)
