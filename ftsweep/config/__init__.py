"""Configuration: per-method frozen dataclasses and the sweep spec schema."""

from ftsweep.config.base import BaseConfig, TrainConfig, check
from ftsweep.config.errors import ConfigError

__all__ = ["BaseConfig", "ConfigError", "TrainConfig", "check"]
