"""Ray Tune Trainable and registry record of FixMatch (:mod:`ftsweep.methods.fixmatch`)."""

from __future__ import annotations

import analysis.target_pretraining
import search_spaces.fixmatch
from ftsweep.methods.fixmatch import FixMatchConfig, FixMatchMethod
from ftsweep.methods.stage2 import STAGE2_SMOKE
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class FixMatchTrainable(MethodTrainable):
    method_cls = FixMatchMethod


METHOD = MethodRecord(
    name="fixmatch",
    config_cls=FixMatchConfig,
    trainable=FixMatchTrainable,
    search_space=search_spaces.fixmatch,
    layouts=(
        analysis.target_pretraining.table1,
        analysis.target_pretraining.table2,
        analysis.target_pretraining.table8,
        analysis.target_pretraining.digits,
    ),
    smoke=STAGE2_SMOKE,
)
