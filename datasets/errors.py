"""Error types that entry points turn into one-line messages."""
from __future__ import annotations


class DataError(ValueError):
    """A data file (or one row/column of it) is unusable; the message names where and why."""


class UsageError(ValueError):
    """The command line asks for something impossible (exit status 2)."""
