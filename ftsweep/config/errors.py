"""The one error type for bad user input."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input, reported as one line naming the field, the value and what is allowed.

    Args:
        field: dotted path of the offending field (``methods[0].config.lr``).
        value: the value given.
        allowed: what would have been accepted.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: {value!r} — {allowed}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, object, str]]:
        """Pickled by its three fields, so that one raised in a Ray task reaches the driver as
        itself (``BaseException`` pickles ``args``, the one message, which ``__init__`` refuses)."""
        return type(self), (self.field, self.value, self.allowed)

    def within(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` prepended to the field path."""
        return ConfigError(f"{prefix}.{self.field}" if prefix else self.field, self.value, self.allowed)
