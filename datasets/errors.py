"""Error types that entry points turn into one-line messages, and ``--debug``, which shows their tracebacks."""
from __future__ import annotations

import os

DEBUG_HELP = ("show full tracebacks on errors and debug logging, with the native FFmpeg/MediaPipe output where "
              "videos are read (also: SPOTER_DEBUG=1)")


def add_debug_option(parser) -> None:
    """``--debug``: the same flag, with the same meaning, on every entry point."""
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)


def debug_requested(argv=()) -> bool:
    """``--debug`` among the arguments, or ``SPOTER_DEBUG`` set (to anything but 0)."""
    return "--debug" in argv or os.environ.get("SPOTER_DEBUG", "") not in ("", "0")


class DataError(ValueError):
    """A data file (or one row/column of it) is unusable; the message names where and why."""


class UsageError(ValueError):
    """The command line asks for something impossible (exit status 2)."""
