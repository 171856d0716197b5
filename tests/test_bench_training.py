"""bench/bench_training.py's measuring parts: the child's own peak memory and allocator, and the arm ratios."""
import subprocess
import sys

import pytest

from bench.bench_training import allocator_ratios, run_measured


def test_run_measured_reports_the_childs_peak_memory_and_its_allocator():
    """The child's own: a small child of this (large) test process reports a small peak."""
    grow = "import sys, time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); " \
           "print('INFO train: memory allocator: mimalloc', file=sys.stderr); time.sleep(0.3)"
    peak, allocator = run_measured([sys.executable, "-c", grow])
    assert peak > 300 and allocator == "mimalloc"
    peak, allocator = run_measured([sys.executable, "-c", "import time; time.sleep(0.3)"])
    assert 0 < peak < 100 and allocator == "unknown"
    with pytest.raises(subprocess.CalledProcessError):
        run_measured([sys.executable, "-c", "raise SystemExit(3)"])


def test_allocator_ratios_are_medians_of_each_arm():
    def run(arm, speed, peak):
        return {"arm": arm, "train_samples_per_s": {"mean": speed}, "peak_rss_mb": peak}
    runs = [run("auto", 40, 1400), run("system", 40, 2000), run("auto", 50, 1500), run("system", 30, 2200),
            run("auto", 45, 1450), run("system", 36, 2100)]
    ratios = allocator_ratios(runs)
    assert ratios["samples_per_s_auto_over_system"] == round(45 / 36, 3)
    assert ratios["peak_rss_auto_over_system"] == round(1450 / 2100, 3)
    assert ratios["peak_rss_mb"] == {"auto": 1450.0, "system": 2100.0}
