"""The bad-input corpus: run an entry point as a user would and judge its stderr.

Every case runs the real script in a subprocess with this interpreter, so an uncaught
exception shows up exactly as a user would see it (a ``Traceback``). A case passes when
the exit status is the expected one, stderr holds no traceback, and the last non-empty
line of stderr names the file (and row/column) and what is wrong. The cases of a module
run two at a time (the entry points spend most of their time importing torch), then each
is judged by its own test.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASE_TIMEOUT = 600  # seconds; a hung entry point fails its case instead of stalling the suite
PARALLEL = 2

# A one-layer model trained for one batch: enough to reach every code path that reads data.
TINY_TRAIN = ["--num_encoder_layers", "1", "--num_decoder_layers", "1", "--dim_feedforward", "32",
              "--vector_length", "8", "--epochs", "1", "--epoch_iters", "1", "--batch_size", "4",
              "--samples_per_class", "2", "--tracker", "none", "--eval_every", "0", "--seed", "1"]

csv.field_size_limit(sys.maxsize)


@dataclass
class Run:
    """One finished entry-point run."""

    argv: list[str]
    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line.strip() for line in self.stderr.splitlines() if line.strip()]

    @property
    def last(self) -> str:
        return self.lines[-1] if self.lines else ""

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-12:])
        return f"$ {' '.join(self.argv)}\nexit {self.status}\n--- stderr (end) ---\n{tail}"


def run_entry(argv: list[str], env: dict, timeout: float = CASE_TIMEOUT) -> Run:
    """``python <script> <args>`` from the repository root."""
    command = [sys.executable, *argv]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else expired.stderr or ""
        return Run(argv, -9, "", f"{stderr}\n(case timed out after {timeout} s)")
    return Run(argv, done.returncode, done.stdout, done.stderr)


def run_many(commands: dict[str, list[str]], env: dict) -> dict[str, Run]:
    """Run every command, ``PARALLEL`` at a time; results by name.

    With ``SPOTER_CORPUS_LOG=<file>`` set, one JSON line per run is appended there
    (entry point, case, exit status, traceback or not, last stderr line): the figures of
    docs/robustness.md are counted from it.
    """
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {name: pool.submit(run_entry, argv, env) for name, argv in commands.items()}
        runs = {name: future.result() for name, future in futures.items()}
    log = os.environ.get("SPOTER_CORPUS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            for name, run in runs.items():
                script = " ".join(run.argv[:2]) if run.argv[0] == "preprocessing.py" else run.argv[0]
                handle.write(json.dumps({"entry": script, "case": name, "status": run.status,
                                         "traceback": "Traceback" in run.stderr, "last": run.last}) + "\n")
    return runs


def assert_clean_failure(run: Run, status: int, *needles: str) -> None:
    """Exit ``status``, no traceback, and a last stderr line that says what is wrong and where."""
    context = run.describe()
    assert "Traceback" not in run.stderr, context
    assert run.status == status, context
    assert "error" in run.last.lower(), context
    assert "unexpected" not in run.last, context  # the entry point's fallback for bugs is not a clear error
    for needle in needles:
        assert str(needle) in run.last, f"{needle!r} not in the last line\n{context}"


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.stderr, run.describe()


# ----------------------------------------------------------------------------- building inputs
def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def landmark_folder(source: Path, dest: Path, extra: dict[str, bytes] | None = None, gloss: str | None = None,
                    split: str = "train") -> Path:
    """A copy of the landmark folder ``source`` (landmarks/ + index.csv) with ``extra`` files added.

    Each extra ``<video_id>.npy`` gets an index row (gloss ``gloss`` or the first gloss, split
    ``split``), so the loader meets it exactly like a good file.
    """
    shutil.copytree(source / "landmarks", dest / "landmarks")
    header, rows = read_rows(source / "index.csv")
    column = {name: i for i, name in enumerate(header)}
    for video_id, content in (extra or {}).items():
        (dest / "landmarks" / f"{video_id}.npy").write_bytes(content)
        row = [""] * len(header)
        row[column["video_id"]], row[column["gloss"]] = video_id, gloss or rows[0][column["gloss"]]
        if "signer_id" in column:
            row[column["signer_id"]] = "signer99"
        if "split" in column:
            row[column["split"]] = split
        rows.append(row)
    write_rows(dest / "index.csv", header, rows)
    return dest
