"""Ray Tune Trainable and registry record of Core-tuning (:mod:`ftsweep.methods.core_tuning`)."""

from __future__ import annotations

import analysis.core_tuning
import search_spaces.core_tuning
from ftsweep.methods.core_tuning import CoreTuningConfig, CoreTuningMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class CoreTuningTrainable(MethodTrainable):
    method_cls = CoreTuningMethod


METHOD = MethodRecord(
    name="core_tuning",
    config_cls=CoreTuningConfig,
    trainable=CoreTuningTrainable,
    search_space=search_spaces.core_tuning,
    layouts=(
        analysis.core_tuning.table1,
        analysis.core_tuning.table2,
        analysis.core_tuning.fig3,
        analysis.core_tuning.table6,
    ),
)
