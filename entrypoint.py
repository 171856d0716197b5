"""Shared behaviour of the command-line entry points: one-line errors, exit codes, logging, --debug."""
from __future__ import annotations

import logging
import sys

from datasets.errors import add_debug_option, debug_requested  # noqa: F401 (the shared --debug; --device: models.device)

DEBUG_HINT = "rerun with --debug (or SPOTER_DEBUG=1) for the traceback"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _os_error_line(error: OSError) -> str:
    """``<path>: <reason>`` (and the second path of a rename/link) instead of ``[Errno N] ...``."""
    if error.filename is None or not error.strerror:
        return _first_line(error)
    target = f" -> {error.filename2}" if error.filename2 is not None else ""
    return f"{error.filename}{target}: {error.strerror}"


def run_cli(main, argv=None) -> int:
    """Run ``main``; failures print one line to stderr (exit 1, or 2 for usage errors).

    Known failures (bad data, files, arguments) print what is wrong; anything else is
    a bug and prints its type and message with a hint. Set ``--debug`` or
    ``SPOTER_DEBUG=1`` to see the full traceback instead.
    """
    argv = sys.argv[1:] if argv is None else argv
    debug = debug_requested(argv)
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from datasets.errors import DataError, UsageError
    try:
        return main(argv) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (the one place where every failure becomes one line)
        if debug:
            raise
        if isinstance(error, UsageError):
            print(f"error: {_first_line(error)}", file=sys.stderr)
            return 2
        if isinstance(error, OSError):
            line = _os_error_line(error)
        elif isinstance(error, (DataError, ValueError, FloatingPointError)):
            line = _first_line(error)
        else:
            line = f"unexpected {type(error).__name__}: {_first_line(error)} ({DEBUG_HINT})"
        print(f"error: {line}", file=sys.stderr)
        return 1
