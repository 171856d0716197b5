"""``train.py`` runs under mimalloc where the pinned wheel is installed, and the C library's malloc on request."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import entrypoint

REPO = Path(__file__).resolve().parents[2]
PINNED_PLATFORM = sys.platform.startswith("linux") and platform.machine() == "x86_64"   # requirements.txt marker


def _train(dataset: Path, out: Path, **env) -> subprocess.CompletedProcess:
    argv = [sys.executable, "train.py", "--training_set_path", str(dataset / "tiny_train.csv"), "--out_dir", str(out),
            "--experiment_name", "alloc", "--tracker", "none", "--epochs", "1", "--epoch_iters", "1",
            "--batch_size", "8", "--samples_per_class", "2", "--num_encoder_layers", "1", "--num_decoder_layers", "1",
            "--dim_feedforward", "16", "--vector_length", "8", "--no-report_untrained", "--device", "cpu"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTER_ALLOCATOR", "MIMALLOC_"))}
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env={**environment, **env})


@pytest.mark.skipif(not PINNED_PLATFORM, reason="cmeel-mimalloc is pinned for x86-64 Linux only")
def test_the_pinned_wheel_provides_the_library():
    library = entrypoint.mimalloc_library()
    assert library is not None and library.is_file() and library.name.startswith("libmimalloc.so.")


@pytest.mark.skipif(not PINNED_PLATFORM, reason="cmeel-mimalloc is pinned for x86-64 Linux only")
def test_train_py_restarts_under_mimalloc_and_trains(tiny_synthetic_dataset, tmp_path):
    run = _train(tiny_synthetic_dataset, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "memory allocator: mimalloc" in run.stderr and "trained:" in run.stdout
    assert (tmp_path / "alloc" / "last.pth").is_file()


def test_system_allocator_on_request_and_a_bad_choice_is_one_line(tiny_synthetic_dataset, tmp_path):
    run = _train(tiny_synthetic_dataset, tmp_path, SPOTER_ALLOCATOR="system")
    assert run.returncode == 0, run.stderr
    assert "memory allocator: system" in run.stderr
    bad = _train(tiny_synthetic_dataset, tmp_path, SPOTER_ALLOCATOR="tcmalloc")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: SPOTER_ALLOCATOR='tcmalloc': choose auto or system"


def test_a_restarted_process_never_restarts_again(tiny_synthetic_dataset, tmp_path):
    """Were the preload to fail silently, the marker stops a second restart (no exec loop)."""
    run = _train(tiny_synthetic_dataset, tmp_path, SPOTER_ALLOCATOR_RESTARTED="1")
    assert run.returncode == 0, run.stderr
    assert "memory allocator: system" in run.stderr


def test_active_allocator_reads_this_process_maps():
    assert entrypoint.active_allocator() in ("mimalloc", "system")
    probe = subprocess.run([sys.executable, "-c", "import entrypoint; print(entrypoint.active_allocator())"],
                           cwd=REPO, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "LD_PRELOAD": ""})
    assert probe.stdout.strip() == "system", probe.stderr
