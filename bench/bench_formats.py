"""Reading the field's pose formats, against this project's own ``.npy``, in one run.

Writes every clip of a real landmark set (default ``../shared/data/real-dev``) once per format
into a temporary folder (``.npy``, pose-format ``.pose``, Kaggle ISLR ``.parquet``, OpenPose
folders, MMPose JSON; not timed), then reads each folder through
:func:`datasets.landmark_folder.read_landmark_folder` (no cache) and reports clips/s, the ratio
to ``.npy`` measured in the same run, and the largest difference of the normalised frames from
the ``.npy`` ones (0 up to float32 rounding means the format loses nothing the model uses).

Usage: ``python bench/bench_formats.py [--data DIR] [--clips N] [--output FILE]``; prints JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import REPO_ROOT, machine, print_json  # noqa: E402
from augmentations.normalization import normalize  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.landmark_folder import read_landmark_folder  # noqa: E402
from tests import pose_fixtures as writers  # noqa: E402

SIZE = (1280, 720)
FORMATS = {
    "npy": lambda folder, vid, raw: np.save(folder / f"{vid}.npy", raw),
    "pose": lambda folder, vid, raw: writers.write_pose_file(folder / f"{vid}.pose", raw, *SIZE),
    "kaggle_parquet": lambda folder, vid, raw: writers.write_kaggle_parquet(folder / f"{vid}.parquet", raw,
                                                                            shuffle=False),
    "openpose_folder": lambda folder, vid, raw: writers.write_openpose_folder(folder / vid, raw, *SIZE),
    "mmpose_json": lambda folder, vid, raw: writers.write_mmpose_json(folder / f"{vid}.json", raw, *SIZE),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "real-dev"))
    parser.add_argument("--clips", type=int, default=0, help="first N clips of the index (0 = all)")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()
    data = Path(args.data)
    rows = list(csv.DictReader(open(data / "index.csv")))[: args.clips or None]
    raws = {r["video_id"]: np.load(data / "landmarks" / f"{r['video_id']}.npy", allow_pickle=False) for r in rows}
    index_lines = ["video_id,gloss,signer_id,split,frame_width,frame_height"]
    index_lines += [f"{r['video_id']},{r['gloss']},{r['signer_id']},train,{SIZE[0]},{SIZE[1]}" for r in rows]
    results, reference = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index.csv"
        index.write_text("\n".join(index_lines) + "\n")
        for name, write in FORMATS.items():
            folder = Path(tmp) / name
            folder.mkdir()
            for video_id, raw in raws.items():
                write(folder, video_id, raw)
            started = time.perf_counter()
            dataset, report = read_landmark_folder(folder, index)
            seconds = time.perf_counter() - started
            frames = normalize(dataset.frames)
            if reference is None:
                reference = frames
            results[name] = {"clips": len(dataset), "skipped": len(report.skipped), "seconds": round(seconds, 3),
                             "clips_per_second": round(len(dataset) / seconds, 1),
                             "max_abs_difference_from_npy": float(np.abs(frames - reference).max())}
    for name in results:
        results[name]["seconds_relative_to_npy"] = round(results[name]["seconds"] / results["npy"]["seconds"], 1)
    document = {"benchmark": "pose formats read through read_landmark_folder", "data": data.name,
                "clips": len(rows), "frame_size": list(SIZE), "machine": machine(), "formats": results}
    print_json(document)
    if args.output:
        Path(args.output).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
