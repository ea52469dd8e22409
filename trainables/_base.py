"""The Ray Tune adapter of every method: a class Trainable around one ``ftsweep.methods`` object.

A method module subclasses :class:`MethodTrainable` and names its Ray-free method class in
``method_cls``; ``setup`` builds ``self.method = method_cls(config, logdir=self.logdir)`` and
``step`` / ``save_checkpoint`` / ``load_checkpoint`` / ``reset_config`` delegate to it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ray import tune

from ftsweep.methods.base import FineTuner

__all__ = ["MethodTrainable"]


class MethodTrainable(tune.Trainable):
    """Runs ``method_cls`` as a Tune trial; ``config_cls`` is the method's config class."""

    method_cls: ClassVar[type] = FineTuner
    config_cls: ClassVar[type] = FineTuner.config_cls

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "method_cls" in cls.__dict__:
            cls.config_cls = cls.method_cls.config_cls

    def setup(self, config: dict[str, Any]) -> None:
        self.method = self.method_cls(config, logdir=self.logdir)

    def step(self) -> dict[str, Any]:
        return self.method.step()

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.method.save_checkpoint(checkpoint_dir)

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        self.method.load_checkpoint(checkpoint)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Actor reuse: rebuild the method for the new config in the same process."""
        self.setup(new_config)
        self.config = new_config
        return True
