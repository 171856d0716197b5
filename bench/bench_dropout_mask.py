"""Benchmark: the lean layers' dropout masks from 16-bit random lanes against ``torch.rand(shape) >= p``.

The published architecture (6+6 layers, feed-forward 2048, dropout 0.1) draws a keep mask
for every attention weight and every feed-forward unit of every training step. This times
one training step of that model (batch 32, ``--frames`` frames, batch-all triplets, SGD)
with each way of drawing the masks, the two arms alternating step by step, so a machine
whose speed drifts slows both alike; the figure that counts is the ratio of their step
times, pair by pair. It also times the mask of one feed-forward block alone.

Usage: ``python bench/bench_dropout_mask.py [--steps 8] [--frames 96]``; prints JSON.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models.lean_layers as lean  # noqa: E402
from bench.common import machine, print_json  # noqa: E402
from bench.gemm_limit import best_seconds  # noqa: E402
from datasets import layout  # noqa: E402
from models import SpoterConfig, build_model  # noqa: E402
from training import BatchAllMiner, TripletMarginLoss  # noqa: E402

BATCH = 32


def float_keep_mask(shape, p: float, device=None) -> torch.Tensor:
    """The reference: one float draw per entry."""
    return torch.rand(shape, device=device) >= p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per arm (after one warm-up step each)")
    parser.add_argument("--frames", type=int, default=96)
    args = parser.parse_args()
    lane_keep_mask = lean.draw_keep_mask
    shape = (BATCH, args.frames, 2048)
    masks = {"float_ms": 1e3 * best_seconds(lambda: float_keep_mask(shape, 0.1), 10),
             "lanes_ms": 1e3 * best_seconds(lambda: lane_keep_mask(shape, 0.1), 10)}

    torch.manual_seed(0)
    model = build_model(SpoterConfig()).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    criterion = TripletMarginLoss(margin=1.0, miner=BatchAllMiner(margin=1.0))
    clips = torch.rand(BATCH, args.frames, layout.NUM_POINTS, layout.NUM_COORDS)
    labels = torch.arange(BATCH) // 4

    def step(draw) -> float:
        lean.draw_keep_mask = draw
        started = time.perf_counter()
        loss = criterion(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    step(float_keep_mask), step(lane_keep_mask)  # warm-up
    times = {"float": [], "lanes": []}
    for _ in range(args.steps):
        times["float"].append(step(float_keep_mask))
        times["lanes"].append(step(lane_keep_mask))
    lean.draw_keep_mask = lane_keep_mask
    pairs = [a / b for a, b in zip(times["float"], times["lanes"])]
    print_json({
        "benchmark": "dropout_mask", "machine": machine(), "batch": BATCH, "frames": args.frames,
        "model": "default SpoterConfig (6+6 layers, d=108, ff 2048, dropout 0.1)",
        "feed_forward_mask": {**{k: round(v, 2) for k, v in masks.items()},
                              "speedup": round(masks["float_ms"] / masks["lanes_ms"], 2)},
        "step_seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "step_speedup_lanes_vs_float": {"per_pair": [round(p, 3) for p in pairs],
                                        "median": round(statistics.median(pairs), 3)},
    })


if __name__ == "__main__":
    main()
