"""The errors a user can cause: each is reported as one line naming the file, value or state."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data; the message names the file, line and offending text."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last committed checkpoint is left as it was."""
