"""A synthetic dataset folder on disk, in the same formats real data uses, and its command line.

The folder holds what a real extraction would: ``landmarks/<video_id>.npy`` (raw
float32 ``(T, 150)``), ``index.csv`` and a WLASL-style ``index.json``, plus SPOTER
CSVs for training and ``dataset.json`` describing how it was generated. Every file is
written atomically, so an interrupted run never leaves a half-written file.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from datasets import layout
from datasets.atomic import atomic_save_npy, atomic_write
from datasets.errors import UsageError
from datasets.synthetic.generate import SyntheticSample, check_args, generate_signs
from datasets.synthetic.seeds import GENERATOR_VERSION
from datasets.synthetic.signers import Variability, make_signers
from datasets.synthetic.vocabulary import SignRecipe, make_recipes

log = logging.getLogger(__name__)


def _recipe_summary(recipe: SignRecipe) -> dict:
    d = asdict(recipe)
    d["keypoints"] = [[round(c, 4) for c in k] for k in recipe.keypoints]
    return d


def _check_folder_args(num_signers: int, val_signers: int, name: str) -> None:
    if not 0 <= val_signers < num_signers:
        raise UsageError(f"val_signers must be in 0..{num_signers - 1} (at least one training signer), "
                         f"got {val_signers}")
    if not name or any(c in name for c in "/\\\0"):
        raise UsageError(f"dataset name {name!r} must be a plain file-name prefix")


def _write_landmarks(landmarks_dir: Path, samples: list[SyntheticSample]) -> None:
    """One ``.npy`` per clip; files of an earlier, larger run are reported, never deleted."""
    landmarks_dir.mkdir(parents=True, exist_ok=True)
    stale = {p.stem for p in landmarks_dir.glob("*.npy")} - {s.video_id for s in samples}
    if stale:
        log.warning("%s holds %d .npy files not in the new index (left untouched)", landmarks_dir, len(stale))
    for sample in samples:
        atomic_save_npy(landmarks_dir / f"{sample.video_id}.npy", sample.raw)


def _write_indexes(out_dir: Path, samples: list[SyntheticSample], splits: list[str], glosses: list[str]) -> None:
    """``index.csv`` (video_id,gloss,signer_id,split) and the WLASL-style ``index.json``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video_id", "gloss", "signer_id", "split"])
    writer.writerows([s.video_id, s.gloss, s.signer_id, split] for s, split in zip(samples, splits))
    with atomic_write(out_dir / "index.csv", "w") as handle:
        handle.write(buffer.getvalue())

    instances: dict[str, list] = {gloss: [] for gloss in glosses}
    for s, split in zip(samples, splits):
        instances[s.gloss].append({"video_id": s.video_id, "signer_id": s.signer_id, "split": split,
                                   "frame_start": 1, "frame_end": -1})
    with atomic_write(out_dir / "index.json", "w") as handle:
        json.dump([{"gloss": g, "instances": inst} for g, inst in instances.items()], handle, indent=1)


def _write_spoter_csvs(out_dir: Path, name: str, samples: list[SyntheticSample], splits: list[str],
                       label_names: list[str]) -> dict[str, Path]:
    """``<name>_train.csv`` / ``<name>_val.csv`` in the published SPOTER format (a split with no clip is skipped)."""
    # Imported here so generating samples in memory (web build, tests) does not load pandas.
    from datasets.sequences import SequenceSet
    from datasets.spoter_csv import write_spoter_csv

    csv_paths = {}
    for split in ("train", "val"):
        chosen = [i for i, sp in enumerate(splits) if sp == split]
        if not chosen:
            continue
        sequence_set = SequenceSet.from_sequences(
            [layout.raw_to_spoter(samples[i].raw) for i in chosen], [samples[i].label for i in chosen], label_names,
            video_ids=[samples[i].video_id for i in chosen], signer_ids=[samples[i].signer_id for i in chosen],
            splits=[split] * len(chosen))
        csv_paths[split] = out_dir / f"{name}_{split}.csv"
        write_spoter_csv(sequence_set, csv_paths[split])
    return csv_paths


def write_synthetic_dataset(out_dir: str | os.PathLike, num_classes: int = 100, num_signers: int = 12,
                            samples_per_class_per_signer: int = 2, val_signers: int = 3, seed: int = 0,
                            min_frames: int = 30, max_frames: int = 120, name: str = "synthetic",
                            variability: Variability | None = None) -> dict:
    """Generate and write a dataset folder; the last ``val_signers`` signers form the val split.

    Writes ``landmarks/<video_id>.npy`` (raw float32 ``(T, 150)``), ``index.csv``
    (video_id,gloss,signer_id,split), WLASL-style ``index.json``, SPOTER CSVs
    ``<name>_train.csv`` / ``<name>_val.csv`` and ``dataset.json`` (parameters, class
    recipes, signer profiles). Every file is written atomically. Returns a summary.
    """
    check_args(num_classes, num_signers, samples_per_class_per_signer, min_frames, max_frames)
    _check_folder_args(num_signers, val_signers, name)
    out_dir = Path(out_dir)
    landmarks_dir = out_dir / "landmarks"
    variability = variability or Variability()
    samples = generate_signs(num_classes, num_signers, samples_per_class_per_signer, seed, min_frames, max_frames,
                             variability)
    signers = make_signers(num_signers, seed, variability=variability)
    recipes = make_recipes(num_classes, seed)
    val_ids = {p.signer_id for p in signers[num_signers - val_signers:]}
    splits = ["val" if s.signer_id in val_ids else "train" for s in samples]
    label_names = [r.gloss for r in recipes]

    _write_landmarks(landmarks_dir, samples)
    _write_indexes(out_dir, samples, splits, label_names)
    csv_paths = _write_spoter_csvs(out_dir, name, samples, splits, label_names)

    parameters = dict(num_classes=num_classes, num_signers=num_signers,
                      samples_per_class_per_signer=samples_per_class_per_signer, val_signers=val_signers,
                      seed=seed, min_frames=min_frames, max_frames=max_frames, name=name)
    summary = {
        "num_samples": len(samples),
        "num_frames": int(sum(len(s.raw) for s in samples)),
        "train_samples": splits.count("train"), "val_samples": splits.count("val"),
        "val_signer_ids": sorted(val_ids),
        "files": {"landmarks": str(landmarks_dir), "index_csv": str(out_dir / "index.csv"),
                  "index_json": str(out_dir / "index.json"), "dataset_json": str(out_dir / "dataset.json"),
                  **{f"{split}_csv": str(path) for split, path in csv_paths.items()}},
    }
    document = {
        "generator": "datasets.synthetic", "version": GENERATOR_VERSION, "parameters": parameters,
        "variability": asdict(variability),
        "summary": {k: v for k, v in summary.items() if k != "files"},
        "signers": [asdict(p) for p in signers], "classes": [_recipe_summary(r) for r in recipes],
    }
    with atomic_write(out_dir / "dataset.json", "w") as handle:
        json.dump(document, handle, indent=1)
    return summary


def main(argv=None) -> int:
    """``python -m datasets.synthetic OUT_DIR [--classes N ...]``: write a synthetic dataset."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m datasets.synthetic",
                                     description="Write a synthetic sign-language landmark dataset.")
    parser.add_argument("out_dir")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--signers", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2, help="samples per class per signer")
    parser.add_argument("--val-signers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-frames", type=int, default=30)
    parser.add_argument("--max-frames", type=int, default=120)
    parser.add_argument("--name", default="synthetic", help="prefix of the SPOTER CSV files")
    args = parser.parse_args(argv)
    try:
        summary = write_synthetic_dataset(args.out_dir, args.classes, args.signers, args.samples, args.val_signers,
                                          args.seed, args.min_frames, args.max_frames, args.name)
    except UsageError as error:
        parser.exit(2, f"error: {error}\n")
    print(json.dumps(summary, indent=2))
    return 0
