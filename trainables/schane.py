"""Ray Tune Trainable and registry record of SCHaNe (:mod:`ftsweep.methods.schane`)."""

from __future__ import annotations

import analysis.schane
import search_spaces.schane
from ftsweep.methods.schane import SchaneConfig, SchaneMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class SchaneTrainable(MethodTrainable):
    method_cls = SchaneMethod


METHOD = MethodRecord(
    name="schane",
    config_cls=SchaneConfig,
    trainable=SchaneTrainable,
    search_space=search_spaces.schane,
    layouts=(
        analysis.schane.table1,
        analysis.schane.table2,
        analysis.schane.table3,
        analysis.schane.table4,
        analysis.schane.fig2,
    ),
    #: few-shot on, cheap: the registry test keeps one eval batch (~6 test images per class)
    smoke={"fewshot_ways": [5], "fewshot_shots": [1], "fewshot_query": 2, "fewshot_episodes": 5},
)
