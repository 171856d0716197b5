"""Throughput of landmark extraction (frames/s) with 1 and 2 worker processes; prints JSON.

    python bench/bench_extraction.py [--video PATH] [--copies 8] [--workers 1,2] [--repeat 1]

Runs :func:`datasets.extraction.extract_landmarks` on ``--copies`` copies of one video
(default: ``<repo>/../shared/data/video/test_video.mp4``, else opencv-doc's Megamind.avi),
into a fresh folder per run, timing the whole call (pool start included). With ``--repeat``
the worker counts alternate (1, 2, 1, 2, ...) and the median is reported, so a change in
background load hits both alike. CPU milliseconds per frame (workers included) is reported
too: unlike frames/s it hardly depends on what else the machine is doing. Also checks that every run produced byte-identical
outputs. The load average is reported because other work on the same cores changes the
figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
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


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the pool's workers, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=None, help="video to copy (default: see module doc)")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="alternating rounds; the median is reported")
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
        for round_ in range(args.repeat):
            for workers in counts:
                out = Path(tmp) / f"out-{round_}-{workers}"
                load = os.getloadavg()[0]
                cpu, start = cpu_seconds(), time.perf_counter()
                summary = extract_landmarks(videos, out, workers=workers, progress=False)
                seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
                if summary.failures:
                    sys.exit(f"extraction failed: {summary.failures}")
                runs.append({"workers": workers, "frames": summary.frames, "seconds": round(seconds, 2),
                             "frames_per_second": round(summary.frames / seconds, 1),
                             "cpu_ms_per_frame": round(1000 * cpu / summary.frames, 1),
                             "load_average_1min_before": round(load, 2)})
                outputs.append({p.name: p.read_bytes() for p in sorted(out.glob("*.npy"))})
                shutil.rmtree(out)

    median = {w: statistics.median(r["frames_per_second"] for r in runs if r["workers"] == w) for w in counts}
    result = {
        "benchmark": "extraction", "video": video.name, "copies": args.copies, "frames_per_run": runs[0]["frames"],
        "cpus": os.cpu_count(), "runs": runs,
        "median_frames_per_second": {str(w): v for w, v in median.items()},
        "speedup_vs_first": {str(w): round(median[w] / median[counts[0]], 2) for w in counts[1:]},
        "outputs_identical_across_runs": all(o == outputs[0] for o in outputs),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
