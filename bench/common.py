"""Small helpers shared by the benchmark scripts (which print one JSON document each)."""
from __future__ import annotations

import json
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"  # generated inputs and outputs; git-ignored


class Timer:
    """Wall-clock seconds of a ``with`` block, in ``.seconds``."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


@contextmanager
def timed(results: dict, key: str):
    """Store the seconds a block took in ``results[key]``."""
    with Timer() as timer:
        yield timer
    results[key] = round(timer.seconds, 4)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    """Resident set size right now, in MiB (from /proc; NaN where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return round(pages * resource.getpagesize() / 2**20, 1)


def machine() -> dict:
    """Where the figures were measured; a load average above the CPU count means shared, noisy timings."""
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "load_average_1min": round(load, 2)}


def print_json(document: dict) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
