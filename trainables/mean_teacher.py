"""Ray Tune Trainable and registry record of Mean Teacher (:mod:`ftsweep.methods.mean_teacher`)."""

from __future__ import annotations

import analysis.target_pretraining
import search_spaces.fixmatch
from ftsweep.methods.mean_teacher import MeanTeacherConfig, MeanTeacherMethod
from ftsweep.methods.stage2 import STAGE2_SMOKE
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class MeanTeacherTrainable(MethodTrainable):
    method_cls = MeanTeacherMethod


METHOD = MethodRecord(
    name="mean_teacher",
    config_cls=MeanTeacherConfig,
    trainable=MeanTeacherTrainable,
    search_space=search_spaces.fixmatch,
    layouts=(analysis.target_pretraining.table8,),
    smoke=STAGE2_SMOKE,
)
