"""Synthetic data generator: speed, and how hard the generated task is for a crude baseline.

Times :func:`datasets.synthetic.generate_signs` and
:func:`datasets.synthetic.write_synthetic_dataset` (into a temporary folder) at the
default size (100 classes x 12 signers x 2 samples), then scores a 1-nearest-neighbour
classifier on SPOTER-normalised points resampled to 16 frames and flattened, trained on
the first signers and tested on the held-out last ``val_signers`` (cross-signer top-1).
A trained sequence model should beat that baseline clearly; it should itself sit well
above chance and well below 100% (the generator's difficulty is tuned for that).

Usage: ``python bench/bench_synthetic.py [--classes N] [--signers N] [--seed S]``; prints JSON.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import Timer, machine, peak_rss_mb, print_json  # noqa: E402
from augmentations.normalization import normalize  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.synthetic import generate_signs, write_synthetic_dataset  # noqa: E402

RESAMPLED_FRAMES = 16


def resample(points: np.ndarray, frames: int = RESAMPLED_FRAMES) -> np.ndarray:
    """Nearest-frame resampling of ``(T, ...)`` to ``(frames, ...)``, evenly over the clip."""
    index = np.minimum((np.arange(frames) + 0.5) * len(points) / frames, len(points) - 1).astype(int)
    return points[index]


def features(raw_sequences, body: str = "centered", hands: bool = True, points=slice(None)) -> np.ndarray:
    """Flattened normalised SPOTER points, ``(N, 16 * points * 2)``."""
    return np.stack([resample(normalize(layout.raw_to_spoter(r), body=body, hands=hands))[:, points].ravel()
                     for r in raw_sequences])


def nearest_neighbour_top1(train_x, train_y, test_x, test_y) -> float:
    """Top-1 accuracy of Euclidean 1-NN (squared distances via one matrix product)."""
    d = (test_x ** 2).sum(1)[:, None] - 2 * test_x @ train_x.T + (train_x ** 2).sum(1)[None, :]
    return float(np.mean(train_y[np.argmin(d, axis=1)] == test_y))


def main() -> None:
    """Generate, write, then the 1-NN baseline, then one JSON document.

    Kept as one function (~70 lines): three timed steps that read in the order they run.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--signers", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--val-signers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cpu = time.process_time()
    with Timer() as generation:
        samples = generate_signs(args.classes, args.signers, args.samples, seed=args.seed)
    generation_cpu = time.process_time() - cpu
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp, Timer() as writing:
        write_synthetic_dataset(tmp, args.classes, args.signers, args.samples, args.val_signers, seed=args.seed)
    writing_cpu = time.process_time() - cpu

    signer_ids = sorted({s.signer_id for s in samples})
    val_ids = set(signer_ids[len(signer_ids) - args.val_signers:])
    is_val = np.array([s.signer_id in val_ids for s in samples])
    labels = np.array([s.label for s in samples])
    raws = [s.raw for s in samples]
    left_handed = np.array([s.left_handed for s in samples])

    baseline = {}
    variants = {
        "spoter_normalised": dict(),
        "body_only": dict(points=layout.BODY_SLICE),
        "unnormalised_hands": dict(hands=False),
    }
    for name, kwargs in variants.items():
        x = features(raws, **kwargs)
        baseline[name] = round(nearest_neighbour_top1(x[~is_val], labels[~is_val], x[is_val], labels[is_val]), 4)
    x = features(raws)
    right = is_val & ~left_handed
    baseline["spoter_normalised_right_handed_val_only"] = round(
        nearest_neighbour_top1(x[~is_val], labels[~is_val], x[right], labels[right]), 4) if right.any() else None

    # Same signers, other repetition: how well the class is identifiable once the signer's
    # personal style is known (the part of the task that no model can learn away).
    repetition = np.array([int(s.video_id.rsplit("_", 1)[1]) for s in samples])
    if args.samples > 1:
        first, second = ~is_val & (repetition == 0), ~is_val & (repetition == 1)
        baseline["spoter_normalised_seen_signers"] = round(
            nearest_neighbour_top1(x[first], labels[first], x[second], labels[second]), 4)

    frames = np.array([len(r) for r in raws])
    dominant_present = np.mean(np.concatenate([
        ~layout.missing_mask(layout.raw_to_spoter(s.raw)[:, layout.LEFT_HAND_SLICE if s.left_handed
                                                          else layout.RIGHT_HAND_SLICE]).all(axis=1)
        for s in samples]))
    print_json({
        "benchmark": "synthetic_generator",
        "machine": machine(),
        "config": vars(args),
        "samples": len(samples),
        "frames": {"total": int(frames.sum()), "min": int(frames.min()), "max": int(frames.max())},
        "generate_seconds": round(generation.seconds, 3),
        "generate_cpu_seconds": round(generation_cpu, 3),
        "generate_ms_per_sample": round(1000 * generation.seconds / len(samples), 3),
        "write_dataset_seconds": round(writing.seconds, 3),  # generation + .npy/CSV/JSON files
        "write_dataset_cpu_seconds": round(writing_cpu, 3),
        "dominant_hand_detected_fraction": round(float(dominant_present), 4),
        "baseline": {
            "method": f"1-NN, Euclidean, {RESAMPLED_FRAMES} resampled frames of normalised SPOTER points; "
                      f"train signers -> {args.val_signers} held-out signers",
            "chance": round(1 / args.classes, 4),
            "top1": baseline,
        },
        "peak_rss_mb": peak_rss_mb(),
    })


if __name__ == "__main__":
    main()
