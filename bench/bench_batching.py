"""Benchmark: length-aware random batches against plain padded random batches, in one run.

Both arms train the same published-size model (6+6 layers, feed-forward 2048, batch 32,
SGD, batch-all triplets) on the same WLASL-shaped clips (lengths drawn uniformly from
30–120 frames, the mix of WLASL100) for the same number of steps:

* ``plain``: random batches, each padded to its longest clip (what a plain PyTorch loop does);
* ``length``: ``--length_batching``: random batches regrouped by length within windows of
  16 batches, padded to a multiple of 16 frames.

The arms alternate in rounds (plain, length, plain, length, ...) so that a machine whose
speed drifts during the run slows both alike; the figure that counts is the ratio of their
samples/s, pair by pair. Each arm also reports its padding share, its real-frame GFLOP/s as
a fraction of the GEMM limit measured in this run (``bench/gemm_limit.py``), and how much
slower its first round was than its later ones (shape warm-up). With ``--bf16`` a third arm
trains the length batches under bfloat16 autocast (``train.py --amp bf16``), for CPUs with
bf16 matrix units; its fraction is still taken of the fp32 limit.

Usage: ``python bench/bench_batching.py [--steps 12] [--rounds 3] [--bf16]``; prints JSON.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augmentations.torch_data import FrameCount, pad_batch  # noqa: E402
from bench.common import machine, print_json  # noqa: E402
from bench.gemm_limit import epoch_flops, gemm_limit  # noqa: E402
from models import SpoterConfig, build_model  # noqa: E402
from training import BatchAllMiner, TripletMarginLoss  # noqa: E402
from training.batches import PAD_MULTIPLE, random_batches  # noqa: E402

BATCH = 32
CLIPS = 2000


def make_clips(seed: int = 0) -> tuple[list[torch.Tensor], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(30, 121, CLIPS)
    clips = [torch.from_numpy(rng.random((t, 54, 2), dtype=np.float32)) for t in lengths]
    return clips, lengths, np.arange(CLIPS) % 100


def run_round(model, optimizer, criterion, clips, labels, batches, pad_multiple, bf16: bool = False) -> dict:
    count = FrameCount()
    started = time.perf_counter()
    for batch in batches:
        landmarks, mask = pad_batch([clips[i] for i in batch], pad_multiple)
        count.add(mask)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # as train.py --amp bf16
            embeddings = model(landmarks, mask)
        loss = criterion(embeddings.float(), torch.as_tensor(labels[batch]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "samples_per_s": len(batches) * BATCH / seconds, "train_seconds": seconds,
            **count.metrics()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="training steps per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bf16", action="store_true",
                        help="add a third arm: length batches under bfloat16 autocast (train.py --amp bf16)")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = SpoterConfig()
    clips, lengths, labels = make_clips()
    criterion = TripletMarginLoss(margin=1.0, miner=BatchAllMiner(margin=1.0, filter_easy=True))
    arms = {}
    names = ("plain", "length", "length_bf16") if args.bf16 else ("plain", "length")
    for name in names:
        model = build_model(config).train()
        arms[name] = {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=1e-3), "rounds": []}
    limits = [gemm_limit(config)["train_step_limit_gflop_per_s"]]
    for round_index in range(args.rounds):
        for name, arm in arms.items():
            rng = np.random.default_rng([round_index, 1])  # both arms draw from the same permutations
            grouped = name.startswith("length")
            batches = random_batches(CLIPS, BATCH, args.steps, rng, lengths=lengths if grouped else None)
            arm["rounds"].append(run_round(arm["model"], arm["optimizer"], criterion, clips, labels, batches,
                                           PAD_MULTIPLE if grouped else 1, bf16=name.endswith("bf16")))
    limits.append(gemm_limit(config)["train_step_limit_gflop_per_s"])
    limit = statistics.mean(limits)
    document = {"benchmark": "length_batching", "machine": machine(), "steps_per_round": args.steps,
                "rounds": args.rounds, "batch": BATCH, "clip_lengths": "uniform 30-120",
                "gemm_train_step_limit_gflop_per_s": limits}
    for name, arm in arms.items():
        rounds = arm["rounds"]
        real = [epoch_flops(config, r) / r["seconds"] / 1e9 for r in rounds]
        document[name] = {
            "samples_per_s": [round(r["samples_per_s"], 2) for r in rounds],
            "padding_share": round(statistics.mean(r["padding_share"] for r in rounds), 3),
            "real_frame_gflop_per_s": [round(g, 1) for g in real],
            "fraction_of_limit_real_frames": round(statistics.median(real) / limit, 3),
            "first_round_slowdown": (round(rounds[0]["seconds"] / statistics.mean(r["seconds"] for r in rounds[1:]), 2)
                                     if len(rounds) > 1 else None),
        }
    pairs = [b["samples_per_s"] / a["samples_per_s"] for a, b in zip(arms["plain"]["rounds"], arms["length"]["rounds"])]
    document["speedup_length_vs_plain"] = {"per_round": [round(p, 3) for p in pairs],
                                           "median": round(statistics.median(pairs), 3)}
    if args.bf16:  # bf16 against the fp32 GEMM limit: above 1 means faster than fp32 matmul can go
        pairs = [b["samples_per_s"] / a["samples_per_s"]
                 for a, b in zip(arms["length"]["rounds"], arms["length_bf16"]["rounds"])]
        document["speedup_bf16_vs_fp32_length"] = {"per_round": [round(p, 3) for p in pairs],
                                                   "median": round(statistics.median(pairs), 3)}
    print_json(document)


if __name__ == "__main__":
    main()
