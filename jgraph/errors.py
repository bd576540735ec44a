"""The errors a user can cause: each is reported as one line naming the file, value or state.

Every command (`jgraph <command>`, `python -m jgraph.cli.<command>`) catches `UserError` and prints
its message as one line on stderr with exit status 2; anything else is a bug and keeps its traceback.
`command_parser` is the argparse every command uses: its usage errors are one line too.
"""

from __future__ import annotations

import argparse


class UserError(Exception):
    """A mistake the user can fix: bad input, option, path or run (one line, exit status 2)."""


class DataError(UserError, ValueError):
    """Bad input data; the message names the file, line and offending text."""


class ConfigError(UserError, ValueError):
    """A config key or value that is unknown or impossible; the message names the key."""


class OptionError(UserError, ValueError):
    """A bad command-line option or argument value (`--k 0`, a missing file)."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last committed checkpoint is left as it was."""


class CommandParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def command_parser(prog: str, description: str | None) -> CommandParser:
    return CommandParser(prog=prog, description=description,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
