"""Benchmark: train.py end to end on WLASL100-shaped data with the published hyper-parameters.

Generates (once) 100 synthetic glosses x 25 signers (20 signers = 2,000 training clips, 5
held-out signers = 500 validation clips, 30-120 frames), then runs ``train.py`` in a child
process with the published ``train.sh`` flags (published architecture, batch 32, SGD lr 1e-3,
augmentation 0.75, in-batch mining with easy-triplet filtering) for ``--epochs`` epochs,
evaluating every epoch. Reports, from the run's ``metrics.jsonl``:

* training samples/s (the best epoch and the mean) next to the model's multiply-adds per sample
  (a training step counted as 3x forward) and the GFLOP/s that implies;
* seconds of the per-epoch evaluation (silhouette on 2,000 train + 500 validation embeddings,
  kNN top-1/top-5 and the cross-signer protocol), to compare with the original code's ~126 s;
* the child's peak resident memory.

The original implementation measured 5-8 samples/s, 26 s + ~100 s of silhouette and 3.4 GB
peak on this kind of machine. Usage: ``python bench/bench_training.py [--epochs 2]``; prints JSON.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="further train.py flags (after everything else)")
    args = parser.parse_args()
    from models import SpoterConfig, count_flops_per_sample

    train, val = build_data(RESULTS_DIR / "wlasl_shaped")
    out = RESULTS_DIR / "bench_training_run"
    command = [sys.executable, "train.py", "--training_set_path", str(train), "--validation_set_path", str(val),
               "--experiment_name", "bench", "--out_dir", str(out), "--epochs", str(args.epochs),
               "--eval_every", "1", "--plot_every", "0", "--no-report_untrained", *PUBLISHED_FLAGS, *args.extra]
    shown = [str(Path(c).relative_to(REPO_ROOT)) if c.startswith(str(REPO_ROOT)) else c for c in command[1:]]
    document = {"benchmark": "training_end_to_end", "machine": machine(), "command": " ".join(shown)}
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    document["wall_seconds"] = round(time.perf_counter() - started, 1)
    document["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    epochs = [json.loads(line) for line in (out / "bench" / "metrics.jsonl").read_text().splitlines()]
    rates = [e["samples_per_s"] for e in epochs]
    frames = 75  # mean clip length of 30..120 frames
    macs = count_flops_per_sample(SpoterConfig(), frames)
    document.update({
        "train_samples_per_s": {"best": round(max(rates), 1), "mean": round(sum(rates) / len(rates), 1)},
        "macs_per_sample_forward_at_75_frames": macs,
        "achieved_gflop_per_s": round(max(rates) * 3 * 2 * macs / 1e9, 1),
        "eval_seconds": [round(e["eval_seconds"], 2) for e in epochs],
        "speedup_eval_vs_original_126s": round(126 / min(e["eval_seconds"] for e in epochs), 1),
        "val_top1": [e.get("val_top1") for e in epochs],
        "original": {"train_samples_per_s": "5-8", "eval_seconds": 126, "peak_rss_mb": 3400},
        "note": "peak_rss_mb is the larger of the data generation (first run only) and train.py",
    })
    print_json(document)


if __name__ == "__main__":
    main()
