"""The fine-tuning methods, Ray-free: one module per method with its frozen config dataclass
(the one home of its defaults) and its method class, a :class:`FineTuner` subclass built from a
config mapping (``CoinMethod({...})``) that trains one epoch per ``step()``.

``trainables.<m>`` wraps each method class for Ray Tune; nothing under ``ftsweep.methods``
imports Ray.
"""

from ftsweep.methods.base import INTERNAL_KEYS, FineTuner, resolve_trial_config

__all__ = ["INTERNAL_KEYS", "FineTuner", "resolve_trial_config"]
