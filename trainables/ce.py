"""Ray Tune Trainable and registry record of CE-tuning (:mod:`ftsweep.methods.ce`)."""

from __future__ import annotations

from ftsweep.methods.ce import CEConfig, CEMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class CETrainable(MethodTrainable):
    method_cls = CEMethod


METHOD = MethodRecord(name="ce", config_cls=CEConfig, trainable=CETrainable)
