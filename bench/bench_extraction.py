"""Throughput of landmark extraction (frames/s) with 1 and 2 worker processes; prints JSON.

    python bench/bench_extraction.py [--video PATH] [--copies 8] [--workers 1,2]

Runs :func:`datasets.extraction.extract_landmarks` on ``--copies`` copies of one video
(default: ``<repo>/../shared/data/video/test_video.mp4``, else opencv-doc's Megamind.avi),
into a fresh folder per worker count, timing the whole call (pool start included). Also
checks that every worker count produced byte-identical outputs. The machine's load average
is reported because other work on the same cores changes the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from datasets.extraction import extract_landmarks  # noqa: E402

CANDIDATES = (
    REPO_ROOT / ".." / "shared" / "data" / "video" / "test_video.mp4",
    Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=None, help="video to copy (default: see module doc)")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    video = args.video or next((p for p in CANDIDATES if p.is_file()), None)
    if video is None or not video.is_file():
        sys.exit("no benchmark video: pass --video, or provide ../shared or the opencv-doc package")
    counts = [int(w) for w in args.workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-extraction-") as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        for k in range(args.copies):
            shutil.copy(video, videos / f"copy{k:02d}{video.suffix}")
        runs, outputs = [], []
        for workers in counts:
            out = Path(tmp) / f"out-{workers}"
            load = os.getloadavg()[0]
            start = time.perf_counter()
            summary = extract_landmarks(videos, out, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            if summary.failures:
                sys.exit(f"extraction failed: {summary.failures}")
            runs.append({"workers": workers, "frames": summary.frames, "seconds": round(seconds, 2),
                         "frames_per_second": round(summary.frames / seconds, 1), "load_average_1min_before": load})
            outputs.append({p.name: p.read_bytes() for p in sorted(out.glob("*.npy"))})

    result = {
        "benchmark": "extraction", "video": video.name, "copies": args.copies, "cpus": os.cpu_count(),
        "runs": runs, "outputs_identical_across_worker_counts": all(o == outputs[0] for o in outputs),
    }
    if len(runs) > 1:
        result["speedup_vs_first"] = {str(r["workers"]): round(r["frames_per_second"] / runs[0]["frames_per_second"], 2)
                                      for r in runs[1:]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
