"""Benchmark: train.py end to end on WLASL100-shaped data with the published hyper-parameters.

Generates (once) 100 synthetic glosses x 25 signers (20 signers = 2,000 training clips, 5
held-out signers = 500 validation clips, 30-120 frames), then runs ``train.py`` in a child
process with the published ``train.sh`` flags (published architecture, batch 32, SGD lr 1e-3,
augmentation 0.75, in-batch mining with easy-triplet filtering) for ``--epochs`` epochs,
evaluating every epoch. Reports, from the run's ``metrics.jsonl``:

* training samples/s per epoch, the GFLOP/s they imply for the real frames only and with the
  padding counted (from the epoch's frame counts; a training step counted as 3x forward), the
  padding share, and the real-frame rate as a fraction of the machine's GEMM limit for the
  model's own shapes (``bench/gemm_limit.py``), measured in this run just before and after;
* seconds of the per-epoch evaluation (silhouette on 2,000 train + 500 validation embeddings,
  kNN top-1/top-5 and the cross-signer protocol);
* the peak resident memory of the train.py process itself (its ``VmHWM``, polled; the data
  generation runs in a process of its own and is not counted) and the memory allocator it ran under.

``--allocators auto,system --rounds 2`` runs train.py under mimalloc (``auto``) and under the C
library's malloc (``SPOTER_ALLOCATOR=system``) in turn and reports the ratios of their medians.

Figures from another run, day or machine are not comparable with these (machines here move
2-3x from day to day): compare ratios, e.g. the fraction of the limit. Usage: ``python bench/bench_training.py [--epochs 2]
[--allocators auto,system --rounds 2] [--extra --length_batching]``; prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO_ROOT, RESULTS_DIR, machine, print_json  # noqa: E402

PUBLISHED_FLAGS = ["--batch_size", "32", "--optimizer", "SGD", "--lr", "0.001", "--augmentations_prob", "0.75",
                   "--hard_triplet_mining", "in_batch", "--filter_easy_triplets", "--dropout", "0.2",
                   "--triplet_loss_margin", "1", "--vector_length", "32", "--sampler", "random",
                   "--positional_encoding", "single", "--normalization", "spoter"]


def build_data(folder: Path) -> tuple[Path, Path]:
    train, val = folder / "wlasl_shaped_train.csv", folder / "wlasl_shaped_val.csv"
    if not (train.exists() and val.exists()):
        subprocess.run([sys.executable, "-m", "datasets.synthetic", str(folder), "--name", "wlasl_shaped",
                        "--classes", "100", "--signers", "25", "--samples", "1", "--val-signers", "5",
                        "--min-frames", "30", "--max-frames", "120"], cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return train, val


def _high_water_mb(pid: int) -> float | None:
    """VmHWM of a running process in MB (None once it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_measured(command: list[str], env: dict | None = None, every: float = 0.02) -> tuple[float, str]:
    """Run ``command`` from the repository root: its own peak resident memory in MB and the memory
    allocator its log names (``memory allocator: ...``).

    The peak is the child's ``VmHWM``, read every ``every`` seconds while it runs. Not its
    rusage: Linux carries the parent's high-water mark into a forked child's ``ru_maxrss``
    across exec, so a large benchmark process would set the floor of every figure. A new peak
    in the child's last ``every`` seconds would be missed.
    """
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        peak = 0.0
        while child.poll() is None:
            peak = max(peak, _high_water_mb(child.pid) or 0.0)
            time.sleep(every)
        log.seek(0)
        text = log.read()
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command, stderr=text[-2000:])
    found = re.search(r"memory allocator: (\w+)", text)
    return round(peak, 1), found.group(1) if found else "unknown"


def measure_arm(command: list[str], env: dict, out: Path, config) -> dict:
    """One train.py run and its figures; the GEMM limit is measured just before and after it."""
    from bench.gemm_limit import epoch_flops, gemm_limit
    limit_before = gemm_limit(config)  # the yardstick, measured around the run it judges
    started = time.perf_counter()
    peak, allocator = run_measured(command, env)
    wall = round(time.perf_counter() - started, 1)
    limit_after = gemm_limit(config)
    epochs = [json.loads(line) for line in (out / "bench" / "metrics.jsonl").read_text().splitlines()]
    rates = [e["samples_per_s"] for e in epochs]
    limit = (limit_before["train_step_limit_gflop_per_s"] + limit_after["train_step_limit_gflop_per_s"]) / 2
    real = [epoch_flops(config, e) / e["train_seconds"] / 1e9 for e in epochs]
    computed = [epoch_flops(config, e, padded=True) / e["train_seconds"] / 1e9 for e in epochs]
    return {
        "allocator": allocator, "peak_rss_mb": peak, "wall_seconds": wall,
        "train_samples_per_s": {"best": round(max(rates), 1), "mean": round(sum(rates) / len(rates), 1),
                                "per_epoch": [round(r, 1) for r in rates]},
        "gemm_train_step_limit_gflop_per_s": {"before": limit_before["train_step_limit_gflop_per_s"],
                                              "after": limit_after["train_step_limit_gflop_per_s"]},
        "train_gflop_per_s_real_frames": [round(g, 1) for g in real],
        "train_gflop_per_s_with_padding": [round(g, 1) for g in computed],
        "fraction_of_limit_real_frames": [round(g / limit, 3) for g in real],
        "padding_share": [round(e["padding_share"], 3) for e in epochs],
        "first_epoch_slowdown": round(rates[1] / rates[0], 2) if len(rates) > 1 else None,
        "eval_seconds": [round(e["eval_seconds"], 2) for e in epochs],
        "val_top1": [e.get("val_top1") for e in epochs],
    }


def allocator_ratios(runs: list[dict]) -> dict:
    """mimalloc against the C library's malloc: medians over the alternating rounds of each arm."""
    def median(arm, pick):
        return float(np.median([pick(r) for r in runs if r["arm"] == arm]))
    speed = lambda r: r["train_samples_per_s"]["mean"]  # noqa: E731
    peak = lambda r: r["peak_rss_mb"]                    # noqa: E731
    return {"samples_per_s_auto_over_system": round(median("auto", speed) / median("system", speed), 3),
            "peak_rss_auto_over_system": round(median("auto", peak) / median("system", peak), 3),
            "peak_rss_mb": {"auto": median("auto", peak), "system": median("system", peak)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the train.py process (e.g. LD_PRELOAD=... for another allocator)")
    parser.add_argument("--allocators", default="auto", help="comma-separated SPOTER_ALLOCATOR arms, run in "
                        "turn (e.g. auto,system: mimalloc against the C library's malloc, ratios reported)")
    parser.add_argument("--rounds", type=int, default=1, help="times each arm runs (alternating)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further train.py flags (after everything else)")
    args = parser.parse_args()
    from models import SpoterConfig

    train, val = build_data(RESULTS_DIR / "wlasl_shaped")
    out = RESULTS_DIR / "bench_training_run"
    command = [sys.executable, "train.py", "--training_set_path", str(train), "--validation_set_path", str(val),
               "--experiment_name", "bench", "--out_dir", str(out), "--epochs", str(args.epochs),
               "--eval_every", "1", "--plot_every", "0", "--no-report_untrained", *PUBLISHED_FLAGS, *args.extra]
    shown = [str(Path(c).relative_to(REPO_ROOT)) if c.startswith(str(REPO_ROOT)) else c for c in command[1:]]
    document = {"benchmark": "training_end_to_end", "machine": machine(), "command": " ".join(shown),
                "environment": args.env}
    arms = [arm.strip() for arm in args.allocators.split(",") if arm.strip()]
    runs = []
    for _ in range(args.rounds):
        for arm in arms:
            env = dict(os.environ, **dict(item.split("=", 1) for item in args.env), SPOTER_ALLOCATOR=arm)
            runs.append({"arm": arm, **measure_arm(command, env, out, SpoterConfig())})
    if len(runs) == 1:
        document.update({k: v for k, v in runs[0].items() if k != "arm"})
    else:
        document["runs"] = runs
        if {"auto", "system"} <= set(arms):
            document["allocator_ratios"] = allocator_ratios(runs)
    print_json(document)


if __name__ == "__main__":
    main()
