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


class Interrupted(Exception):
    """A fit stopped by SIGTERM or SIGINT once its state was saved; the entry points print the
    message (one line: the step, and the ckpt_path that resumes it) and exit with 128 + the signal
    number, as a shell reports a process the signal ended (143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, signum: int, step: int, ckpt: "str | None", run_dir: str, command: str,
                 quiet: bool = False):
        self.signum, self.step, self.ckpt = signum, step, ckpt
        self.quiet = quiet  # a DDP rank other than 0: rank 0 says it
        self.exit_code = 128 + int(signum)
        then = (f"resume with ckpt_path={ckpt}: {command}" if ckpt else
                "no checkpoint could be written; run it again")
        super().__init__(f"interrupted at step {step} of run {run_dir}; {then}")
