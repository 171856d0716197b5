"""Shared behaviour of the command-line entry points: one-line errors, exit codes, logging, --debug,
and the memory allocator training runs under."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

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


# --- the memory allocator of training runs -------------------------------------------------
ALLOCATOR_ENV = "SPOTER_ALLOCATOR"       # auto (default): mimalloc when installed; system: the C library's malloc
_RESTARTED_ENV = "SPOTER_ALLOCATOR_RESTARTED"   # set in the re-run process: never restart twice
_MIMALLOC_DISTRIBUTION = "cmeel-mimalloc"


def mimalloc_library() -> Path | None:
    """The mimalloc shared library of the installed ``cmeel-mimalloc`` wheel (a pinned requirement on
    x86-64 Linux), or None where it is not installed."""
    from importlib import metadata
    try:
        files = metadata.files(_MIMALLOC_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.startswith("libmimalloc.so.") and file.name.count(".") == 2:   # libmimalloc.so.<major>
            path = Path(file.locate())
            return path if path.is_file() else None
    return None


def active_allocator() -> str:
    """``mimalloc`` when the library is mapped into this process, else ``system``."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    return "mimalloc" if "libmimalloc" in maps else "system"


def use_training_allocator() -> None:
    """Re-run this process under mimalloc (``LD_PRELOAD``, pages kept for reuse) when it is installed.

    Why: a training step allocates tensors of a few sizes per padded length (saved
    activations, gradients) and frees them again. The C library's malloc on Linux keeps
    freed blocks it cannot reuse for the next, differently sized batch, so the resident
    memory of a published-architecture training climbs to about twice what is alive at
    any moment; giving the memory back instead makes every step fault its pages in again,
    which on the measured machine cost up to half the speed. mimalloc's size classes reuse the
    blocks and, with purging off, never pay the faults: ``bench/bench_training.py`` measured
    lower peak memory *and* faster steps in the same run (README, Benchmarks).

    Only the entry point's ``__main__`` calls this, before heavy imports; the new process
    image keeps the PID, arguments and environment (so launchers such as torchrun are
    unaffected). ``SPOTER_ALLOCATOR=system`` keeps the C library's malloc; nothing happens
    off Linux, when the library is missing, or when it is already loaded.
    """
    choice = os.environ.get(ALLOCATOR_ENV, "auto")
    if choice not in ("auto", "system"):
        print(f"error: {ALLOCATOR_ENV}={choice!r}: choose auto or system", file=sys.stderr)
        raise SystemExit(2)
    if (choice == "system" or os.environ.get(_RESTARTED_ENV) or not sys.platform.startswith("linux")
            or active_allocator() == "mimalloc"):
        return
    library = mimalloc_library()
    if library is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(library), env.get("LD_PRELOAD", "")]))
    env.setdefault("MIMALLOC_PURGE_DELAY", "-1")   # keep freed pages for the next step (purging cost 0.7-0.8x speed)
    env[_RESTARTED_ENV] = "1"
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError as error:  # cannot re-run: train with the C library's malloc
        logging.getLogger(__name__).warning("could not restart under mimalloc (%s); using the system allocator", error)
