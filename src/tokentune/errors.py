"""User-facing errors: one clear message, no traceback wall.

Anything the user can fix (a config value, a data file, a row, a missing download) raises
`UserError`; the entry points print its message and exit with status 2.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input, with a message that says what to do."""


class ConfigError(UserError):
    """An invalid config value; the message starts with the dotted key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


def check(condition: bool, key: str, message: str) -> None:
    """Raise ConfigError(key, message) unless `condition` holds (used in schema __post_init__)."""
    if not condition:
        raise ConfigError(key, message)
