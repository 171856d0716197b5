"""Evaluation memory: a WLASL2000-sized same-set evaluation (21,000 clips, signer ids known) in query blocks.

Synthetic but realistically shaped embeddings: ``--glosses`` glosses x ``--signers``
signers, about one clip per (gloss, signer) plus repetitions, 64-d, clustered by gloss
with a per-signer offset (so cross-signer is harder than standard), a few glosses signed
by one person only and a few videos cut into two clips. ``evaluate_embeddings`` runs
every protocol (standard, cross_signer, few_shot_1 and few_shot_1_cross_signer, centroid,
MAP@R, per-gloss table, silhouette) on the set as gallery and queries.

Each evaluation runs in a fresh subprocess, so its peak RSS is its own (Python, torch,
the data and the evaluation), reported with the RSS just before the evaluation started.
Besides the large run:

* ``small_blocks`` / ``small_one_block``: a small set evaluated in automatic blocks and in
  a single block holding every query (``(Q, G)`` matrices, as before query blocks); their
  ratio is the same-conditions comparison, and their figures must agree. One block costs
  more than the former code did (its centroid correction is sized per block: ``(Q, C, D)``
  float64 at worst), so it bounds, rather than reproduces, the former memory; the former
  code measured on the same 4,000 clips is quoted in README.md.

Timings are one run's, on a machine that may be shared (see ``machine.load_average_1min``);
compare them only within one report.

Usage: ``python bench/bench_evaluation_memory.py [--clips 21000] [--small-clips 4000] [--output FILE]``;
prints JSON (``bench/reports/evaluation_memory.json`` holds a recorded run).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import current_rss_mb, machine, peak_rss_mb, print_json  # noqa: E402

SEED = 0
TARGET_PEAK_MB = 2048


def synthetic_set(clips: int, glosses: int, signers: int, dim: int = 64, seed: int = SEED):
    """An :class:`evaluation.report.EmbeddedSet` shaped like a large sign dictionary (see module docstring)."""
    from evaluation.report import EmbeddedSet
    rng = np.random.default_rng(seed)
    base = np.repeat(np.arange(glosses), signers)                      # every gloss by every signer once
    base_signer = np.tile(np.arange(signers), glosses)
    lone = np.arange(glosses) % 50 == 7                                # 2% of glosses: one signer only
    keep = ~lone[base] | (base_signer == 0)
    labels, signer = base[keep], base_signer[keep]
    extra = max(clips - len(labels), 0)                                # repetitions fill up to `clips`
    pick = rng.integers(0, len(labels), extra)
    labels, signer = np.concatenate([labels, labels[pick]]), np.concatenate([signer, signer[pick]])
    order = rng.permutation(len(labels))[:clips]
    labels, signer = labels[order], signer[order]
    centres = rng.normal(size=(glosses, dim)).astype(np.float32)
    offsets = rng.normal(size=(signers, dim)).astype(np.float32) * 0.6
    emb = centres[labels] + offsets[signer] + rng.normal(size=(len(labels), dim)).astype(np.float32) * 0.5
    videos = np.asarray([f"v{i}" for i in range(len(labels))])
    videos[1::97] = videos[0::97][: len(videos[1::97])]               # ~1% of videos cut into two clips
    return EmbeddedSet(emb.astype(np.float32), labels, [f"gloss{i}" for i in range(glosses)], videos,
                       np.asarray([f"signer{s}" for s in signer]))


def run_one(args) -> dict:
    """One evaluation in this process (the subprocess side): its figures, seconds and memory."""
    import torch
    from evaluation.report import evaluate_embeddings
    if args.threads:
        torch.set_num_threads(args.threads)
    data = synthetic_set(args.clips, args.glosses, args.signers)
    before = current_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    result = evaluate_embeddings(data, None, shots=[1], draws=args.draws, block_size=args.block_size)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    figures = {name: {k: v for k, v in p.metrics.items() if not k.endswith("_std")}
               for name, p in result.protocols.items()}
    return {"clips": len(data), "glosses": len(data.label_names), "signers": len(set(data.signer_ids)),
            "block_size": args.block_size or "auto", "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "rss_before_evaluation_mb": before, "peak_rss_mb": peak_rss_mb(),
            "silhouette": result.silhouette, "figures": figures}


def in_subprocess(clips: int, glosses: int, signers: int, draws: int, threads: int,
                  block_size: int | None = None) -> dict:
    """Run :func:`run_one` in a fresh interpreter so the peak RSS is that evaluation's alone."""
    command = [sys.executable, str(Path(__file__).resolve()), "--run", "--clips", str(clips), "--glosses",
               str(glosses), "--signers", str(signers), "--draws", str(draws), "--threads", str(threads)]
    if block_size:
        command += ["--block-size", str(block_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"evaluation subprocess failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def same_figures(a: dict, b: dict, tolerance: float = 1e-6) -> bool:
    """True when two runs report the same protocols and figures (floats within ``tolerance``)."""
    if set(a) != set(b):
        return False
    for name in a:
        for key, value in a[name].items():
            other = b[name].get(key)
            if isinstance(value, float):
                if not (np.isnan(value) and np.isnan(other)) and abs(value - other) > tolerance:
                    return False
            elif value != other:
                return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=21000)
    parser.add_argument("--glosses", type=int, default=2000)
    parser.add_argument("--signers", type=int, default=10)
    parser.add_argument("--small-clips", type=int, default=4000)
    parser.add_argument("--small-glosses", type=int, default=400)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--block-size", type=int, default=None, help="queries per block (default: automatic)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)   # the subprocess side
    args = parser.parse_args(argv)
    if args.run:
        print_json(run_one(args))
        return 0

    common = dict(signers=args.signers, draws=args.draws, threads=args.threads)
    large = in_subprocess(args.clips, args.glosses, block_size=args.block_size, **common)
    small = in_subprocess(args.small_clips, args.small_glosses, **common)
    small_one_block = in_subprocess(args.small_clips, args.small_glosses, block_size=args.small_clips, **common)
    report = {
        "benchmark": "evaluation_memory",
        "machine": machine(),
        "command": "python bench/bench_evaluation_memory.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "large": large,
        "large_within_target": large["peak_rss_mb"] <= TARGET_PEAK_MB,
        "target_peak_mb": TARGET_PEAK_MB,
        "small_blocks": small,
        "small_one_block": small_one_block,
        "small_one_block_over_blocks": {
            "peak_rss": round(small_one_block["peak_rss_mb"] / small["peak_rss_mb"], 2),
            "evaluation_rss_growth": round((small_one_block["peak_rss_mb"] - small_one_block["rss_before_evaluation_mb"])
                                           / max(small["peak_rss_mb"] - small["rss_before_evaluation_mb"], 1e-9), 2),
            "seconds": round(small_one_block["seconds"] / small["seconds"], 2)},
        "small_figures_equal": same_figures(small["figures"], small_one_block["figures"]),
    }
    print_json(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
