"""Benchmark: SPOTER training throughput vs analytic FLOPs, and triplet-loss time/memory.

Prints one JSON document. Run from the repository root::

    python bench/bench_model.py [--repeats 5] [--threads N]

Times are the best of ``repeats`` runs after a warm-up (the model cases also give the
median); the 1-minute load average is reported because other processes skew timings.

* ``model``: forward+backward samples/s of the default config for batches of 32 random
  clips (fixed lengths 30..120 and a padded batch of mixed lengths), with multiply-adds per
  sample from :func:`count_flops_per_sample` and the achieved GFLOP/s (a training step is
  counted as 3x the forward FLOPs: forward + two matrix products per backward), beside the
  machine's GEMM limit at that batch's own shapes (``bench/gemm_limit.py``) measured right
  after it, and the fraction of that limit reached (for the padded batch also counting its
  real frames only).
* ``loss``: forward+backward time of TripletMarginLoss for B = 32/128/256 with batch-all,
  batch-all filtered and batch-hard, next to the published (B, B, B) formulation, and the
  peak bytes of live tensors the loss creates at B = 256.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gemm_limit import gemm_limit  # noqa: E402
from datasets import layout  # noqa: E402
from models import SpoterConfig, build_model, count_flops_per_sample  # noqa: E402
from training import BatchAllMiner, BatchHardMiner, EuclideanDistance, TripletMarginLoss  # noqa: E402

BATCH = 32
FRAME_COUNTS = (30, 60, 90, 120)
LOSS_BATCHES = (32, 128, 256)
EMBEDDING_DIM = 32
SAMPLES_PER_CLASS = 4  # labels = B / 4 classes, so every anchor has positives


def timed(fn, repeats: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn()`` in seconds after one warm-up call.

    Rates use the best time: on a shared machine other processes only ever add time.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def bench_model(repeats: int) -> dict:
    cfg = SpoterConfig()
    model = build_model(cfg).train()
    loss_fn = TripletMarginLoss()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(BATCH) // SAMPLES_PER_CLASS

    def step(x, mask):
        model.zero_grad(set_to_none=True)
        loss_fn(model(x, mask), labels).backward()

    def case(x, mask, frames_for_flops, real_lengths=None):
        seconds, median = timed(lambda: step(x, mask), repeats)
        macs = count_flops_per_sample(cfg, frames_for_flops)
        # The yardstick: plain matmul at this batch's own shapes, measured right after it.
        limit = gemm_limit(cfg, BATCH, frames_for_flops, repeats)["train_step_limit_gflop_per_s"]
        achieved = BATCH * 3 * 2 * macs / seconds / 1e9
        row = {
            "samples_per_s": round(BATCH / seconds, 2),
            "step_ms": round(seconds * 1e3, 1),
            "step_ms_median": round(median * 1e3, 1),
            "macs_per_sample_forward": macs,
            "gflops_per_sample_train_step": round(3 * 2 * macs / 1e9, 4),
            "achieved_gflop_per_s": round(achieved, 2),
            "gemm_train_step_limit_gflop_per_s": limit,
            "fraction_of_limit": round(achieved / limit, 3),
        }
        if real_lengths is not None:  # padded batch: the useful share of the work
            real = sum(3 * 2 * count_flops_per_sample(cfg, int(t)) for t in real_lengths) / seconds / 1e9
            row["fraction_of_limit_real_frames"] = round(real / limit, 3)
        return row

    results = {}
    for t in FRAME_COUNTS:
        x = torch.rand(BATCH, t, layout.NUM_POINTS, layout.NUM_COORDS, generator=g)
        results[f"T={t}"] = case(x, None, t)
    lengths = torch.randint(FRAME_COUNTS[0], FRAME_COUNTS[-1] + 1, (BATCH,), generator=g)
    t_max = int(lengths.max())
    x = torch.rand(BATCH, t_max, layout.NUM_POINTS, layout.NUM_COORDS, generator=g)
    mask = torch.arange(t_max)[None, :] >= lengths[:, None]
    results[f"mixed T={FRAME_COUNTS[0]}..{FRAME_COUNTS[-1]} padded to {t_max}"] = case(x, mask, t_max, lengths.tolist())

    model.eval()
    x = torch.rand(BATCH, 60, layout.NUM_POINTS, layout.NUM_COORDS, generator=g)
    with torch.no_grad():
        seconds, _ = timed(lambda: model(x), repeats)
    results["inference T=60 (no_grad, eval)"] = {"samples_per_s": round(BATCH / seconds, 2)}
    return {"config": "default SpoterConfig()", "batch": BATCH,
            "parameters": sum(p.numel() for p in model.parameters()), "results": results}


def naive_batch_all(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """The published (B, B, B) batch-all formulation, as a reference point only."""
    d = EuclideanDistance()(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    valid = (same & ~eye)[:, :, None] & ~same[:, None, :]
    values = F.relu(d[:, :, None] - d[:, None, :] + margin) * valid
    return values.sum() / (values > 0).sum().clamp_min(1)


class PeakLiveBytes(TorchDispatchMode):
    """Peak bytes of storages created by ops while active and still referenced (CPU, approximate)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, int] = {}

    def _release(self, ptr: int, nbytes: int) -> None:
        self._refs[ptr] -= 1
        if self._refs[ptr] == 0:
            del self._refs[ptr]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                ptr, nbytes = storage.data_ptr(), storage.nbytes()
                if ptr not in self._refs:
                    self._refs[ptr] = 0
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                self._refs[ptr] += 1
                weakref.finalize(t, self._release, ptr, nbytes)
        return out


def bench_loss(repeats: int) -> dict:
    variants = {
        "batch_all": lambda: TripletMarginLoss(miner=BatchAllMiner()),
        "batch_all_filtered": lambda: TripletMarginLoss(miner=BatchAllMiner(filter_easy=True)),
        "batch_hard": lambda: TripletMarginLoss(miner=BatchHardMiner()),
        "naive_cubic_reference": lambda: naive_batch_all,
    }
    g = torch.Generator().manual_seed(1)
    timings, memory = {}, {}
    for b in LOSS_BATCHES:
        emb = torch.randn(b, EMBEDDING_DIM, generator=g)
        labels = torch.arange(b) // SAMPLES_PER_CLASS
        row = {}
        for name, make in variants.items():
            loss_fn = make()

            def run(emb=emb, labels=labels, loss_fn=loss_fn):
                x = emb.clone().requires_grad_()
                loss_fn(x, labels).backward()

            row[name] = round(timed(run, max(5 * repeats, 10))[0] * 1e3, 3)
            if b == LOSS_BATCHES[-1]:
                with PeakLiveBytes() as mode:
                    run()
                memory[name] = mode.peak
        timings[f"B={b}"] = row
    return {"embedding_dim": EMBEDDING_DIM, "samples_per_class": SAMPLES_PER_CLASS,
            "forward_backward_ms_best": timings, f"peak_live_bytes_B={LOSS_BATCHES[-1]}": memory}


def saved_for_backward_mb(dropout: float, frames: int = 120) -> dict:
    """Megabytes of distinct tensors autograd keeps for the backward pass of one batch of 32,
    by tensor shape: where training memory goes (the peak RSS adds the process and allocator)."""
    torch.manual_seed(0)
    model = build_model(SpoterConfig(dropout=dropout)).train()
    clips = torch.randn(BATCH, frames, layout.NUM_POINTS, 2)
    mask = torch.zeros(BATCH, frames, dtype=torch.bool)
    mask[::2, frames // 2:] = True
    storages: dict = {}

    def keep(tensor):
        storage = tensor.untyped_storage()
        storages.setdefault(storage.data_ptr(), (tuple(tensor.shape), storage.nbytes()))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(clips, mask)
    by_shape: dict = {}
    for shape, nbytes in storages.values():
        by_shape[str(shape)] = by_shape.get(str(shape), 0) + nbytes
    largest = sorted(by_shape.items(), key=lambda item: -item[1])[:4]
    return {"total": round(sum(by_shape.values()) / 2**20, 1),
            "largest_by_shape": {shape: round(nbytes / 2**20, 1) for shape, nbytes in largest}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per model case")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "model": bench_model(args.repeats),
        "loss": bench_loss(args.repeats),
        "saved_for_backward_mb_T120_batch32": {f"dropout={p}": saved_for_backward_mb(p) for p in (0.2, 0.0)},
    }
    report["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
