"""The machine's own limit for the model's matrix products, measured in the run that uses it.

Absolute speeds on shared machines move 2–3× from day to day, so a throughput figure only
means something against a yardstick measured at the same time. The yardstick here is plain
``torch.matmul`` at the model's own shapes: for a batch of ``rows = batch × frames`` frame
vectors, each product of an encoder layer (the fused Q/K/V projection, the output
projection, both feed-forward products) and the input projection when there is one. Each
shape is timed forward only (the embedding pass) and forward + backward (a training step:
the product and its two gradient products), best of ``repeats`` after a warm-up.

The limit is the rate at which the model's mix of products would run if every product ran
at its own shape's measured speed: total multiply-adds divided by the sum of each shape's
multiply-adds over its rate. Attention scores and the decoder's one-token products are
small and left out of the mix; a model's throughput is then compared with the limit by
counting the FLOPs of its real frames only (padding is waste, not work).

Usage: ``python bench/gemm_limit.py [--frames 78] [--batch 32]``; prints JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, print_json  # noqa: E402
from models import SpoterConfig, count_flops_per_sample  # noqa: E402


def model_products(config: SpoterConfig, rows: int) -> dict[str, tuple[int, int, int, int]]:
    """``name → (rows, inner, outer, count)``: each matrix product of one forward pass, and how often."""
    d, f = config.hidden_dim, config.dim_feedforward
    layers = config.num_encoder_layers
    products = {"qkv_projection": (rows, d, 3 * d, layers), "output_projection": (rows, d, d, layers),
                "feed_forward_in": (rows, d, f, layers), "feed_forward_out": (rows, f, d, layers)}
    if config.frame_features != d:
        products["input_projection"] = (rows, config.frame_features, d, 1)
    return products


def best_seconds(step, repeats: int) -> float:
    """Best wall seconds of ``repeats`` calls of ``step`` after one warm-up call."""
    step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best


def time_product(rows: int, inner: int, outer: int, repeats: int, backward: bool) -> float:
    """Best seconds of one ``(rows, inner) @ (inner, outer)`` product (with its gradients if ``backward``)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, inner, generator=g, requires_grad=backward)
    w = torch.randn(inner, outer, generator=g, requires_grad=backward)
    grad = torch.randn(rows, outer, generator=g)
    if not backward:
        return best_seconds(lambda: torch.matmul(x, w), repeats)

    def step():
        x.grad = w.grad = None
        torch.matmul(x, w).backward(grad)
    return best_seconds(step, repeats)


def gemm_limit(config: SpoterConfig | None = None, batch: int = 32, frames: int = 78, repeats: int = 5) -> dict:
    """Per-shape GFLOP/s and the limit (GFLOP/s) of the model's product mix, forward and training step."""
    config = config or SpoterConfig()
    rows = batch * frames
    shapes, totals = {}, {"forward": [0.0, 0.0], "train_step": [0.0, 0.0]}  # [flops, seconds at measured rates]
    for name, (m, k, n, count) in model_products(config, rows).items():
        entry = {"shape": f"({m},{k})x({k},{n})", "per_forward": count}
        for mode, backward, products in (("forward", False, 1), ("train_step", True, 3)):
            seconds = time_product(m, k, n, repeats, backward)
            flops = 2 * m * k * n * products
            entry[f"{mode}_gflop_per_s"] = round(flops / seconds / 1e9, 2)
            totals[mode][0] += flops * count
            totals[mode][1] += seconds * count
        shapes[name] = entry
    return {"batch": batch, "frames": frames, "rows": rows, "threads": torch.get_num_threads(), "shapes": shapes,
            "forward_limit_gflop_per_s": round(totals["forward"][0] / totals["forward"][1] / 1e9, 2),
            "train_step_limit_gflop_per_s": round(totals["train_step"][0] / totals["train_step"][1] / 1e9, 2)}


def quadratic_macs(config: SpoterConfig) -> tuple[int, int, int]:
    """``(c0, c1, c2)`` with ``count_flops_per_sample(config, t) == c0 + c1·t + c2·t²`` (checked at t = 4)."""
    m1, m2, m3 = (count_flops_per_sample(config, t) for t in (1, 2, 3))
    c2 = (m3 - 2 * m2 + m1) // 2
    c1 = m2 - m1 - 3 * c2
    c0 = m1 - c1 - c2
    if c0 + 4 * c1 + 16 * c2 != count_flops_per_sample(config, 4):
        raise AssertionError("count_flops_per_sample is no longer a quadratic in the frame count")
    return c0, c1, c2


def epoch_flops(config: SpoterConfig, epoch: dict, padded: bool = False) -> float:
    """FLOPs of one training epoch (a step counted as 3× the forward) from its frame counts.

    ``epoch`` holds the training loop's ``FrameCount`` figures; ``padded`` counts padded
    frames as work (what the machine computed) instead of the real frames only (what was useful).
    """
    c0, c1, c2 = quadratic_macs(config)
    kind = "padded" if padded else "real"
    clips = round(epoch["samples_per_s"] * epoch["train_seconds"])  # metrics.jsonl keeps the rate, not the count
    macs = c0 * clips + c1 * epoch[f"{kind}_frames"] + c2 * epoch[f"{kind}_frames_squared"]
    return 3 * 2 * macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=78, help="frames per clip (78: the mean of 30–120-frame clips)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print_json({"benchmark": "gemm_limit", "machine": machine(),
                **gemm_limit(SpoterConfig(), args.batch, args.frames, args.repeats)})


if __name__ == "__main__":
    main()
