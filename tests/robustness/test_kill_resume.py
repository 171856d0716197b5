"""``kill -9`` during ``train.py``, then ``--resume``: nothing partial is ever visible under a final
name, and the resumed run ends with exactly the weights, metrics and files of an uninterrupted
run (fixed seed, CPU, one thread).

Each trial kills at a moment drawn from a seeded generator: as soon as the run folder is set up
(before any checkpoint exists), or at a random point of a later epoch (so the
kill can land in the middle of writing metrics, curves or checkpoints). Extraction's own
``kill -9`` test is tests/test_preprocessing_cli.py::test_kill_9_then_rerun_gives_the_uninterrupted_outputs.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.robustness.corpus import REPO

EPOCHS = 5
TRIALS = 3
SEED = 20241
RUN = "run"


def train_command(dataset: Path, out: Path, resume: bool = False) -> list[str]:
    return [sys.executable, "train.py", "--training_set_path", str(dataset / "tiny_train.csv"),
            "--validation_set_path", str(dataset / "tiny_val.csv"), "--out_dir", str(out),
            "--experiment_name", RUN, "--epochs", str(EPOCHS), "--epoch_iters", "2",
            "--batch_size", "8", "--samples_per_class", "2", "--num_encoder_layers", "1", "--num_decoder_layers", "1",
            "--dim_feedforward", "32", "--vector_length", "8", "--eval_every", "0", "--tracker", "local",
            "--seed", "3", *(["--resume"] if resume else [])]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    values = dict(os.environ)
    # one thread: the same float operations in the same order in every run
    values.update(SPOTER_CACHE_DIR=str(tmp_path_factory.mktemp("kill-cache")), OMP_NUM_THREADS="1",
                  MKL_NUM_THREADS="1")
    return values


def finished(command: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def check_complete_files(folder: Path) -> list[str]:
    """Every file under its final name is whole; returns the names checked."""
    from models.checkpoint import load_checkpoint
    names = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):  # a temporary file of atomic_write (never under a final name)
            assert path.name.endswith(".tmp"), path
            continue
        names.append(path.name)
        if path.suffix == ".pth":
            load_checkpoint(path)  # raises on a partial file
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines()]
        elif path.suffix == ".csv":
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
            assert rows and all(len(row) == len(rows[0]) for row in rows), path
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:-4] == b"\x00\x00\x00\x00IEND", path
    return names


def untimed(metrics: dict) -> dict:
    """An epoch's metrics without its timings (the only values allowed to differ between runs)."""
    return {k: v for k, v in metrics.items() if k not in ("epoch_seconds", "samples_per_s", "train_seconds", "eval_seconds")}


def epochs_logged(folder: Path) -> int:
    try:
        return len((folder / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


def kill_at_random(command: list[str], env: dict, folder: Path, rng: np.random.Generator, trial: int,
                   epoch_seconds: float) -> str:
    """Start a run, SIGKILL it at a random moment; returns where the kill landed."""
    # trial 0: as soon as the run folder is set up (before any checkpoint); later trials: at a
    # random moment of a random later epoch
    after_epochs = 0 if trial == 0 else int(rng.integers(1, EPOCHS - 1))
    extra = 0.0 if trial == 0 else float(rng.uniform(0.0, epoch_seconds))
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        ready = (lambda: (folder / "config.json").exists()) if trial == 0 else \
            (lambda: epochs_logged(folder) >= after_epochs)
        while not ready() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(extra)
        if process.poll() is not None:
            return f"finished before the kill (returncode {process.returncode})"
        logged = epochs_logged(folder)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        return f"killed after {logged} logged epoch(s) (+{extra:.2f} s)"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_kill_9_during_training_then_resume_gives_the_uninterrupted_weights(tiny_synthetic_dataset, tmp_path, env):
    from models.checkpoint import load_checkpoint
    reference_dir = tmp_path / "reference"
    started = time.monotonic()
    finished(train_command(tiny_synthetic_dataset, reference_dir), env)
    # wall time of one epoch including its metric, curve and checkpoint writes (start-up counted
    # as about two epochs); only used to spread the kill moments, nothing is asserted on it
    epoch_seconds = (time.monotonic() - started) / (EPOCHS + 2)
    reference = load_checkpoint(reference_dir / RUN / "last.pth")
    assert reference["epoch"] == EPOCHS - 1

    rng = np.random.default_rng(SEED)
    outcomes = []
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}"
        folder = out / RUN
        landed = kill_at_random(train_command(tiny_synthetic_dataset, out), env, folder, rng, trial, epoch_seconds)
        checked = check_complete_files(folder) if folder.exists() else []
        finished(train_command(tiny_synthetic_dataset, out, resume=True), env)
        resumed = load_checkpoint(folder / "last.pth")
        context = f"trial {trial}: {landed}; files after the kill: {checked}"
        assert [untimed(h) for h in resumed["history"]] == [untimed(h) for h in reference["history"]], context
        for key, value in reference["state_dict"].items():
            assert torch.equal(value, resumed["state_dict"][key]), (context, key)
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], context  # leftovers cleaned up
        assert check_complete_files(folder) == check_complete_files(reference_dir / RUN), context  # same files
        outcomes.append(landed)
    assert sum(o.startswith("killed") for o in outcomes) >= TRIALS - 1, outcomes
    print("kill/resume trials:", outcomes)
