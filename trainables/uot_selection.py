"""Ray Tune Trainable and registry record of UOT data selection (:mod:`ftsweep.methods.uot_selection`)."""

from __future__ import annotations

import analysis.uot_selection
import search_spaces.uot_selection
from ftsweep.methods.uot_selection import UotSelectionConfig, UotSelectionMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class UotSelectionTrainable(MethodTrainable):
    method_cls = UotSelectionMethod


METHOD = MethodRecord(
    name="uot_selection",
    config_cls=UotSelectionConfig,
    trainable=UotSelectionTrainable,
    search_space=search_spaces.uot_selection,
    layouts=(
        analysis.uot_selection.table1,
        analysis.uot_selection.table1a,
        analysis.uot_selection.table1b,
        analysis.uot_selection.table2,
        analysis.uot_selection.table3,
        analysis.uot_selection.table4,
        analysis.uot_selection.table4a,
        analysis.uot_selection.table4b,
        analysis.uot_selection.fig3a,
        analysis.uot_selection.fig3b,
        analysis.uot_selection.fig4a,
        analysis.uot_selection.digits,
    ),
    smoke={
        "dataset": "digits_target",
        "source_dataset": "digits_source",
        "k": 5,
        "num_clusters": 20,
        "batch_size": 32,
        "milestones": [],
    },
)
