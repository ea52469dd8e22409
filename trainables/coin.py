"""Ray Tune Trainable and registry record of COIN (:mod:`ftsweep.methods.coin`)."""

from __future__ import annotations

import analysis.coin
import search_spaces.coin
from ftsweep.methods.coin import CoinConfig, CoinMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class CoinTrainable(MethodTrainable):
    method_cls = CoinMethod


METHOD = MethodRecord(
    name="coin",
    config_cls=CoinConfig,
    trainable=CoinTrainable,
    search_space=search_spaces.coin,
    layouts=(analysis.coin.table1, analysis.coin.table2, analysis.coin.table3, analysis.coin.table4),
    smoke={"alpha": 0.5},  # both stages run within the smoke epochs
)
