"""Ray Tune Trainable and registry record of UDA (:mod:`ftsweep.methods.uda`)."""

from __future__ import annotations

import analysis.target_pretraining
import search_spaces.fixmatch
from ftsweep.methods.stage2 import STAGE2_SMOKE
from ftsweep.methods.uda import UDAConfig, UDAMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class UDATrainable(MethodTrainable):
    method_cls = UDAMethod


METHOD = MethodRecord(
    name="uda",
    config_cls=UDAConfig,
    trainable=UDATrainable,
    search_space=search_spaces.fixmatch,
    layouts=(analysis.target_pretraining.table8,),
    smoke=STAGE2_SMOKE,
)
