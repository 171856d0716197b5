"""Signer-fold cross-validation: does a recipe recognise signs from people it never saw?

The signers of a landmark folder (real-dev by default: 13 people) are split into K
disjoint folds. For each fold a model is trained, with the recipe's train.py
arguments, on every sample of the OTHER folds' signers (any split). Each held-out
sample is then a query whose gallery is every other person's samples: all samples
of all folds except the query's own signer (so the held-out fold's other signers
are in it). Top-1/top-5 count distinct glosses and "answerable" is the eligibility rule
of evaluation.ranking, as in evaluate.py's cross_signer protocol.

Reported, always beside the untrained network (same architecture, same seed, same
protocol), pooled over all held-out samples of a seed:

* ``all``: every sample (a gloss only its own signer signs can never be right);
* ``multi_signer``: samples whose gloss has at least 2 signers (answerable);
* ``seen`` / ``unseen``: answerable samples whose gloss is / is not in the fold's
  training set.

Figures are the mean over seeds, with the spread over seeds and over (seed, fold)
pairs. One command, one JSON document on stdout::

    python bench/signer_folds.py --folds 5 --seeds 0 1 -- <train.py arguments after the data paths>
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from datasets.errors import UsageError  # noqa: E402
from datasets.sequences import SequenceSet  # noqa: E402

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "real-dev"
GROUPS = ("all", "multi_signer", "seen", "unseen")
KS = (1, 5)


def signer_folds(signer_ids, labels, k: int) -> list[list[str]]:
    """Deterministic signer-disjoint folds of similar sample counts.

    Two signers who are the only people signing some gloss go into the same fold, so
    that gloss is absent from that fold's training set yet still answerable from the
    other person's samples: the unseen-gloss figure needs such queries. These groups
    are then taken from most to fewest samples (ties by first name) and each goes to
    the fold holding the fewest samples so far (ties: the lowest fold number).
    """
    signer_ids, labels = np.asarray(signer_ids), np.asarray(labels)
    names, counts = np.unique(signer_ids, return_counts=True)
    if "" in set(names.tolist()):
        raise UsageError("signer-fold CV needs a signer id on every sample")
    if not 2 <= k <= len(names):
        raise UsageError(f"--folds {k}: choose between 2 and the number of signers ({len(names)})")
    group = {str(n): str(n) for n in names}                      # union-find over signer names

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    for gloss in np.unique(labels):
        pair = sorted(set(signer_ids[labels == gloss].tolist()))
        if len(pair) == 2:
            a, b = sorted((root(pair[0]), root(pair[1])))
            group[b] = a
    members: dict[str, list[str]] = {}
    for name in names.tolist():
        members.setdefault(root(name), []).append(name)
    size = dict(zip(names.tolist(), counts.tolist()))
    groups = sorted(members.values(), key=lambda g: (-sum(size[n] for n in g), g[0]))
    if len(groups) < k:
        raise UsageError(f"--folds {k}: the signers form only {len(groups)} groups")
    folds: list[list[str]] = [[] for _ in range(k)]
    sizes = np.zeros(k, np.int64)
    for g in groups:
        target = int(np.argmin(sizes))
        folds[target].extend(g)
        sizes[target] += sum(size[n] for n in g)
    return [sorted(f) for f in folds]


def fold_hits(embeddings: np.ndarray, sequences: SequenceSet, queries: np.ndarray, train_labels: np.ndarray,
              metric: str = "euclidean") -> dict[str, np.ndarray]:
    """Per-query hits of one fold: gallery = every sample not of the query's own signer.

    Returns boolean arrays over ``queries``: ``top1``, ``top5``, ``answerable`` (another
    signer has the gloss) and ``seen`` (the gloss was in the fold's training labels).
    """
    from evaluation.knn import exclusion_mask, pairwise_distances
    from evaluation.ranking import rank_by_nearest
    labels = sequences.labels
    distances = pairwise_distances(embeddings[queries], embeddings, metric)              # (Q, N)
    excluded = exclusion_mask(sequences.signer_ids[queries], sequences.signer_ids)       # same person
    ranking = rank_by_nearest(distances, labels, labels[queries], len(sequences.label_names), excluded, max(KS))
    out = {f"top{k}": ranking.hits(k) for k in KS}
    out.update(answerable=ranking.eligible, seen=np.isin(labels[queries], train_labels))
    return out


def summarize_hits(hits: dict[str, np.ndarray]) -> dict:
    """Accuracies of the four query groups (nan where a group is empty) and their sizes."""
    groups = {"all": np.ones_like(hits["answerable"]), "multi_signer": hits["answerable"],
              "seen": hits["answerable"] & hits["seen"], "unseen": hits["answerable"] & ~hits["seen"]}
    out = {}
    for name, keep in groups.items():
        out[f"{name}_n"] = int(keep.sum())
        for k in KS:
            out[f"{name}_top{k}"] = float(hits[f"top{k}"][keep].mean()) if keep.any() else float("nan")
    return out


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _spread(per_seed: list[dict], per_fold: list[dict]) -> dict:
    """Mean over seeds (pooled over folds), std over seeds and over (seed, fold) pairs."""
    out = {}
    for key in per_seed[0]:
        if key.endswith("_n"):
            out[key] = per_seed[0][key]
            continue
        seeds = np.asarray([s[key] for s in per_seed], np.float64)
        folds = np.asarray([f[key] for f in per_fold], np.float64)
        finite = folds[np.isfinite(folds)]
        out[key] = {"mean": round(float(np.nanmean(seeds)), 4) if np.isfinite(seeds).any() else None,
                    "std_seeds": round(float(np.nanstd(seeds)), 4) if np.isfinite(seeds).any() else None,
                    "std_folds": round(float(finite.std()), 4) if len(finite) else None}
    return out


class _NoTracking:
    """Tracker that records nothing: per-epoch curve plots would cost more than these short runs."""

    def restore(self, history):
        pass

    def log_epoch(self, metrics):
        pass

    def log_figure(self, name, png_path):
        pass

    def log_artifact(self, name, path):
        pass

    def close(self):
        pass


def _embed(model, sequences: SequenceSet, config) -> np.ndarray:
    from evaluation.embedding import embed_dataset
    from training.data import build_eval_dataset
    return embed_dataset(model, build_eval_dataset(sequences, config), batch_size=128)


def untrained_model(config, num_classes: int):
    """The network training starts from (engine seeds torch with ``config.seed`` before building)."""
    from models.spoter import SpoterConfig, build_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(SpoterConfig.from_dict(config.model_config(num_classes))).eval()


def run(sequences: SequenceSet, train_args: list[str], folds: int = 5, seeds=(0, 1), work_dir: str | None = None,
        progress: bool = False) -> dict:
    """The whole protocol for one recipe; returns the JSON-ready report."""
    from training.checkpoint import load_checkpoint, model_from_checkpoint
    from training.cli import config_from_args
    from training.data import TrainingData
    from training.engine import train

    base, _ = config_from_args(list(train_args))
    if base.classification_model:
        raise UsageError("signer folds evaluate embeddings: drop --classification_model")
    fold_signers = signer_folds(sequences.signer_ids, sequences.labels, folds)
    fold_of = {s: f for f, members in enumerate(fold_signers) for s in members}
    sample_fold = np.asarray([fold_of[s] for s in sequences.signer_ids])
    report = {"recipe": shlex.join(train_args), "folds": fold_signers, "seeds": list(seeds),
              "samples": len(sequences), "signers": len(fold_of), "glosses": int(len(np.unique(sequences.labels)))}
    trained_seed, untrained_seed, trained_fold, untrained_fold, seconds = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="signer_folds_", dir=work_dir) as scratch:
        for seed in seeds:
            parts_t, parts_u = [], []
            untrained = untrained_model(replace(base, seed=int(seed)), len(sequences.label_names))
            untrained_emb = _embed(untrained, sequences, base)
            for f in range(folds):
                config = replace(base, seed=int(seed), out_dir=scratch, experiment_name=f"seed{seed}_fold{f}",
                                 tracker="none", resume=False, validation_set_path="", eval_every=0, plot_every=0,
                                 save_checkpoints_every=0, training_set_path=f"signer-fold {f} of {folds}")
                train_idx, query_idx = np.flatnonzero(sample_fold != f), np.flatnonzero(sample_fold == f)
                data = TrainingData(sequences.subset(train_idx), None, list(sequences.label_names))
                started = time.perf_counter()
                train(config, data=data, tracker=_NoTracking())
                seconds.append(time.perf_counter() - started)
                checkpoint = load_checkpoint(Path(scratch) / config.experiment_name / "last.pth")
                model = model_from_checkpoint(checkpoint)
                metric = config.distance
                train_labels = np.unique(sequences.labels[train_idx])
                hits_t = fold_hits(_embed(model, sequences, config), sequences, query_idx, train_labels, metric)
                hits_u = fold_hits(untrained_emb, sequences, query_idx, train_labels, metric)
                parts_t.append(hits_t)
                parts_u.append(hits_u)
                trained_fold.append(summarize_hits(hits_t))
                untrained_fold.append(summarize_hits(hits_u))
                if progress:  # one JSON line per fold: partial results survive an interrupted run
                    print(json.dumps(_clean({"seed": seed, "fold": f, "seconds": round(seconds[-1], 1),
                                             "trained": trained_fold[-1], "untrained": untrained_fold[-1]})),
                          file=sys.stderr, flush=True)
            trained_seed.append(summarize_hits(_concat(parts_t)))
            untrained_seed.append(summarize_hits(_concat(parts_u)))
    report["trained"] = _spread(trained_seed, trained_fold)
    report["untrained"] = _spread(untrained_seed, untrained_fold)
    report["per_seed"] = {"trained": trained_seed, "untrained": untrained_seed}
    report["train_seconds_per_fold"] = round(float(np.mean(seconds)), 1)
    return _clean(report)


def _clean(value):
    """NaN -> None (JSON has no NaN), floats rounded to 4 places."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return round(value, 4) if np.isfinite(value) else None
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Arguments after -- are train.py flags (the recipe), without data paths.")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="landmark folder with signer ids (default: real-dev)")
    parser.add_argument("--folds", type=int, default=5, help="number of signer folds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    parser.add_argument("--output", help="also write the JSON here (atomically)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest for these small models on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no per-fold lines on stderr")
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    from datasets.loading import load_sequence_set
    if not Path(args.data).exists():
        print(f"error: {args.data}: dataset not found", file=sys.stderr)
        return 2
    try:
        sequences = load_sequence_set(args.data)
        report = run(sequences, train_args, args.folds, tuple(args.seeds), progress=not args.quiet)
    except (UsageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report["data"] = Path(args.data).name
    text = json.dumps(report, indent=2)
    if args.output:
        from datasets.atomic import atomic_write
        with atomic_write(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
