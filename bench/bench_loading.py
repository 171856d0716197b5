"""Dataset loading speed: our SPOTER CSV reader, our binary cache, and the original approach.

Builds (once) a WLASL100-shaped SPOTER CSV of synthetic random-walk landmarks in
``bench/results/`` (2,000 samples of 30-120 frames, values with 5 decimals, ~126 MB,
columns in a shuffled order plus the extra columns the published files carry), then
times in one run:

* ``csv_cold``: :func:`datasets.spoter_csv.read_spoter_csv`, no cache (best of 3, in a
  fresh process, so its peak RSS is the reader's own; ``cpu_seconds`` is less
  sensitive to other jobs on the machine than wall time);
* ``cache_warm``: :func:`datasets.loading.load_sequence_set` on a warm cache entry;
* ``reference``: ``pandas.read_csv`` then ``ast.literal_eval`` on every cell, one array
  per sample, as the original implementation loaded its data (~20-30 s).

Each measurement is one ``measure_*`` function returning a dict; ``main`` puts them
into one JSON document.

Usage: ``python bench/bench_loading.py [--samples N] [--skip-reference]``; prints JSON.
"""
from __future__ import annotations

import argparse
import ast
import csv
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import RESULTS_DIR, Timer, current_rss_mb, machine, peak_rss_mb, print_json  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.atomic import atomic_write  # noqa: E402

SEED = 0
INPUT_VERSION = 1  # part of the generated file's name: bump when the generator changes
EXTRA_COLUMNS = ("video_fps", "video_size_height", "video_size_width")  # as in the published files


# ------------------------------------------------------------------------- input
def synthetic_sequence(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """Random-walk landmarks ``(T, 54, 2)`` in [0, 1]; hands sometimes undetected (0)."""
    start = rng.uniform(0.2, 0.8, size=(1, layout.NUM_POINTS, layout.NUM_COORDS))
    steps = rng.normal(0.0, 0.01, size=(num_frames, layout.NUM_POINTS, layout.NUM_COORDS))
    frames = np.clip(start + np.cumsum(steps, axis=0), 0.0, 1.0)
    for hand in layout.HAND_SLICES:
        frames[rng.random(num_frames) < 0.4, hand] = 0.0
    return np.round(frames, 5)


def build_wlasl_like_csv(path: Path, num_samples: int, num_classes: int = 100, seed: int = SEED) -> Path:
    """Write the benchmark CSV (cells as ``str(list)``, like the published files); skip if present."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    coord_order = list(rng.permutation(layout.COLUMN_NAMES))  # not the layout order
    header = [*coord_order, "labels", *EXTRA_COLUMNS]
    column = {name: i for i, name in enumerate(layout.COLUMN_NAMES)}
    order = np.asarray([column[name] for name in coord_order])
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for i in range(num_samples):
            frames = synthetic_sequence(rng, int(rng.integers(30, 121)))
            columns = frames.reshape(len(frames), -1).T[order]  # (108, T) in file order
            writer.writerow([*map(str, columns.tolist()), i % num_classes, 25.0, 480, 640])
    return path


# -------------------------------------------------------------------- reference
def reference_read(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """The original approach: pandas, then ``ast.literal_eval`` per cell, one array per sample."""
    import pandas as pd
    df = pd.read_csv(path, encoding="utf-8")
    data = []
    for _, row in df.iterrows():
        sample = np.empty((len(ast.literal_eval(row[layout.COLUMN_NAMES[0]])), layout.NUM_POINTS,
                           layout.NUM_COORDS), dtype=np.float32)
        for index, name in enumerate(layout.POINT_NAMES):
            sample[:, index, 0] = ast.literal_eval(row[f"{name}_X"])
            sample[:, index, 1] = ast.literal_eval(row[f"{name}_Y"])
        data.append(sample)
    return data, df["labels"].to_list()


# ------------------------------------------------------------------ measurements
def _cold_in_child(path: str, repeats: int) -> dict:
    from datasets.spoter_csv import read_spoter_csv
    before = current_rss_mb()
    times, cpu, peak = [], [], None
    for _ in range(repeats):
        cpu_start = time.process_time()
        with Timer() as timer:
            dataset = read_spoter_csv(path)
        times.append(timer.seconds)
        cpu.append(time.process_time() - cpu_start)
        peak = peak or peak_rss_mb()  # after the first run: later runs add allocator leftovers
        del dataset
    return {"seconds": round(min(times), 3), "runs": [round(t, 3) for t in times],
            "cpu_seconds": round(min(cpu), 3), "peak_rss_mb": peak, "rss_before_mb": before}


def measure_cold(path: Path, repeats: int = 3) -> dict:
    """Our CSV reader without any cache (best of ``repeats``), in a fresh process so peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_cold_in_child, str(path), repeats).result()


def measure_cached(path: Path, cache_dir: Path) -> dict:
    """Warm cache: one load fills it (timed as ``fill_seconds``), then the best of 5 loads."""
    from datasets.loading import load_sequence_set
    with Timer() as fill:
        filled = load_sequence_set(path, cache=cache_dir)
    times = []
    for _ in range(5):
        with Timer() as timer:
            dataset = load_sequence_set(path, cache=cache_dir)
        times.append(timer.seconds)
    same = len(dataset) == len(filled) and np.array_equal(dataset.frames, filled.frames)
    return {"seconds": round(min(times), 4), "fill_seconds": round(fill.seconds, 3), "same_as_fill": same,
            "samples": len(dataset), "frames": int(dataset.offsets[-1])}


def _same_as_ours(path: Path, samples: list[np.ndarray], labels: list[int]) -> bool:
    from datasets.spoter_csv import read_spoter_csv
    ours = read_spoter_csv(path)
    return len(ours) == len(samples) and ours.labels.tolist() == labels and \
        all(np.array_equal(ours.sequence(i), sample) for i, sample in enumerate(samples))


def measure_reference(path: Path) -> dict:
    """The original approach on the whole file, and whether it gives exactly our arrays."""
    with Timer() as timer:
        samples, labels = reference_read(path)
    return {"seconds": round(timer.seconds, 2), "identical_to_ours": _same_as_ours(path, samples, labels)}


def check_head_against_reference(path: Path, rows: int = 50) -> dict:
    """Cheap exactness check for ``--skip-reference`` runs: the first ``rows`` samples only."""
    with open(path, "rb") as source:
        head = b"".join(source.readline() for _ in range(rows + 1))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "head.csv").write_bytes(head)
        samples, labels = reference_read(Path(folder) / "head.csv")
        return {"rows": rows, "identical_to_ours": _same_as_ours(Path(folder) / "head.csv", samples, labels)}


def measure_normalization(path: Path) -> dict:
    """Normalise every frame of the loaded set at once, numpy and torch (best of 3 each)."""
    import torch

    from datasets.loading import load_sequence_set
    from augmentations.normalization import normalize

    frames = load_sequence_set(path, cache=False).frames
    result = {"frames": int(len(frames))}
    for name, data in (("numpy", frames), ("torch", torch.from_numpy(frames))):
        runs = []
        for _ in range(3):
            with Timer() as timer:
                out = normalize(data, body="centered")
            runs.append(timer.seconds)
        result[f"{name}_seconds"] = round(min(runs), 4)
        result[f"{name}_frames_per_second"] = round(len(frames) / min(runs))
        result[f"{name}_finite"] = bool(np.isfinite(np.asarray(out)).all())
    reference = normalize(frames, body="centered")
    result["max_abs_diff_numpy_vs_torch"] = float(np.abs(reference - normalize(torch.from_numpy(frames),
                                                                                body="centered").numpy()).max())
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--skip-reference", action="store_true", help="leave out the slow original approach")
    args = parser.parse_args(argv)

    path = build_wlasl_like_csv(RESULTS_DIR / f"wlasl_like_{args.samples}_v{INPUT_VERSION}.csv", args.samples)
    result = {"machine": machine(), "input": {"path": str(path.relative_to(RESULTS_DIR.parents[1])),
                                               "megabytes": round(path.stat().st_size / 1e6, 1)}}
    result["csv_cold"] = measure_cold(path)
    with tempfile.TemporaryDirectory() as cache_dir:
        result["cache_warm"] = measure_cached(path, Path(cache_dir))
    if args.skip_reference:
        result["reference_head"] = check_head_against_reference(path)
    else:
        result["reference"] = measure_reference(path)
        result["speedup"] = {
            "csv_cold_vs_reference": round(result["reference"]["seconds"] / result["csv_cold"]["seconds"], 1),
            "cache_warm_vs_reference": round(result["reference"]["seconds"] / result["cache_warm"]["seconds"]),
        }
    result["normalization"] = measure_normalization(path)
    result["targets"] = {"csv_cold_seconds": 1.0, "cache_warm_seconds": 0.05}
    print_json(result)
    return result


if __name__ == "__main__":
    main()
