"""Ray Tune Trainable and registry record of SCL (:mod:`ftsweep.methods.scl`)."""

from __future__ import annotations

from ftsweep.methods.scl import SCLConfig, SclMethod
from ftsweep.registry import MethodRecord
from ftsweep.trial import MethodTrainable


class SCLTrainable(MethodTrainable):
    method_cls = SclMethod


METHOD = MethodRecord(name="scl", config_cls=SCLConfig, trainable=SCLTrainable)
