"""Shared behaviour of the command-line entry points: one-line errors, exit codes, logging."""
from __future__ import annotations

import logging
import os
import sys


def run_cli(main, argv=None) -> int:
    """Run ``main``; known failures print one line to stderr (exit 1, or 2 for usage errors).

    Set ``--debug`` or ``SPOTER_DEBUG=1`` to see the full traceback instead.
    """
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("SPOTER_DEBUG", "") not in ("", "0")
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from datasets.errors import DataError, UsageError
    try:
        return main(argv) or 0
    except UsageError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (DataError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError,
            FloatingPointError) as error:
        if debug:
            raise
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
