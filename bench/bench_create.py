"""Speed of ``preprocessing.py create`` (:func:`datasets.creation.create_dataset`) on many small files.

Generates (in a temporary folder) 10,000 raw landmark files of 30-60 frames, 100 glosses,
50 signers and a WLASL-style ``index.json`` with a train/test split, then times in one run:

* ``create_index_split``: the whole command, the index's own split;
* ``create_signer_split``: again with a new signer split;
* ``load_floor``: only reading every file with :func:`datasets.landmark_folder.load_raw_landmarks`
  (the part no create can avoid), so the rest is mapping, splitting and CSV writing.

``cpu_seconds`` (this process's CPU time) is given beside wall-clock ``seconds``: on a
shared machine the latter mostly measures the other processes.

Usage: ``python bench/bench_create.py [--files N] [--profile]``; prints JSON
(``--profile`` also prints the top functions of the first run to stderr).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import Timer, machine, peak_rss_mb, print_json  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.creation import create_dataset  # noqa: E402
from datasets.landmark_folder import load_raw_landmarks, read_index  # noqa: E402

SEED = 0


def build_folder(root: Path, num_files: int, num_glosses: int, num_signers: int) -> int:
    """Write ``landmarks/<id>.npy`` and ``index.json``; returns the number of frames written."""
    rng = np.random.default_rng(SEED)
    landmarks = root / "landmarks"
    landmarks.mkdir(parents=True)
    lengths = rng.integers(30, 61, size=num_files)
    glosses = {}
    for k, n in enumerate(lengths):
        gloss, signer = f"gloss{k % num_glosses:03d}", (k // num_glosses) % num_signers  # every gloss, many signers
        video_id = f"v{k:05d}"
        raw = rng.random((n, layout.RAW_FEATURES), dtype=np.float32)
        raw[rng.random(n) < 0.3, layout.RAW_LEFT_HAND_OFFSET * 2:layout.RAW_RIGHT_HAND_OFFSET * 2] = 0
        np.save(landmarks / f"{video_id}.npy", raw)
        glosses.setdefault(gloss, []).append({"video_id": video_id, "signer_id": signer,
                                              "split": "test" if (k // num_glosses) % 5 == 0 else "train",
                                              "frame_start": 1, "frame_end": -1})
    (root / "index.json").write_text(json.dumps([{"gloss": g, "instances": i} for g, i in glosses.items()]))
    return int(lengths.sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--glosses", type=int, default=100)
    parser.add_argument("--signers", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="print the top functions of the first run to stderr")
    args = parser.parse_args(argv)

    results = {"bench": "create", "files": args.files, "glosses": args.glosses, "signers": args.signers,
               "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench_create_") as tmp:
        root = Path(tmp)
        with Timer() as timer:
            frames = build_folder(root, args.files, args.glosses, args.signers)
        results.update(frames=frames, generate_seconds=round(timer.seconds, 2))

        profiler = cProfile.Profile() if args.profile else None
        cpu = time.process_time()
        with Timer() as timer:
            if profiler:
                profiler.enable()
            report = create_dataset(root / "landmarks", root / "index.json", root / "out", name="bench")
            if profiler:
                profiler.disable()
        csv_mb = sum(p.stat().st_size for p in (root / "out").glob("*.csv")) / 2**20
        results["create_index_split"] = {
            "seconds": round(timer.seconds, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
            "files_per_second": round(args.files / timer.seconds, 1), "train": report.train_samples,
            "val": report.val_samples, "csv_mb": round(csv_mb, 1)}
        if profiler:
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(18)
            print(text.getvalue(), file=sys.stderr)

        cpu = time.process_time()
        with Timer() as timer:
            report = create_dataset(root / "landmarks", root / "index.json", root / "out_signer", name="bench",
                                    create_new_split=True, split="signer", seed=0)
        results["create_signer_split"] = {
            "seconds": round(timer.seconds, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
            "files_per_second": round(args.files / timer.seconds, 1),
            "val_share": round(report.val_share, 4), "val_signers": len(report.val_signers)}

        entries = read_index(root / "index.json")
        with Timer() as timer:
            for entry in entries:
                load_raw_landmarks(root / "landmarks" / f"{entry.video_id}.npy")
        results["load_floor"] = {"seconds": round(timer.seconds, 2),
                                 "files_per_second": round(args.files / timer.seconds, 1)}
    results["peak_rss_mb"] = peak_rss_mb()
    print_json(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
