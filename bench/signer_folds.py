"""Nested person-disjoint validation: does a recipe recognise signs from people it never saw?

Why nested: choosing a recipe on the same folds it is then reported on makes the chosen
recipe look better than it will be on new people. Here recipes are chosen only on people
inside each outer fold's training side, and reported only on the outer held-out people.

Why "independent test set" scoring: in real use the people a model is shown are not the
people it was trained on. So each held-out sample is a query whose gallery is the OTHER
held-out people's samples only (leave-one-signer-out among the held-out people); no
training person's sample is ever in a gallery.

The protocol:

1. The samples of the ``--data`` sources (landmark folders or SPOTER CSVs, joined with
   glosses merged by name and signer ids kept) are split into ``--folds`` K
   person-disjoint outer folds (:func:`signer_folds`).
2. For each outer fold, its training people are split again into ``--inner-folds`` J
   person-disjoint inner folds. Every ``--recipe`` is trained on each inner training part
   (first seed) and scored on that inner fold's people; the recipe with the best mean
   inner ``multi_signer`` top-1 is chosen for this outer fold. With one recipe there is
   nothing to choose and no inner training.
3. The chosen recipe is trained on all the outer fold's training people for every seed
   in ``--seeds`` and scored on the outer held-out people, always beside its untrained
   network (same architecture, same seed: the weights training started from; with
   ``--init_checkpoint``, the randomly initialised network, so what pre-training adds counts
   as training).

Scored query groups (top-1/top-5 over distinct glosses; "answerable" is the eligibility
rule of evaluation.ranking): ``all``; ``multi_signer`` (answerable: another held-out
person signs the gloss); ``seen`` / ``unseen`` (answerable, gloss in the fold's training
set or not); ``macro_top1``: mean over glosses of the per-gloss top-1 of answerable
queries (a few glosses are about half of real-dev's clips). The headline is the
trained - untrained gap of multi_signer top-1/top-5 and macro top-1: mean over seeds
(pooled over outer folds), std over seeds and std over (seed, fold) pairs, printed with
the trained and untrained figures and, per outer fold, the chosen recipe and every
recipe's inner scores.

With several ``--seeds``, ``seed_ensemble`` also scores each outer fold's reported seeds as one
model (each member's embedding at unit length, side by side: the mean of their cosine
similarities), beside the same ensemble of their untrained networks: what several trainings
add over one on new people.

Each finished training's scores are a small JSON file in ``--work-dir`` (its held-out
embeddings an ``.npz`` beside it; by default a folder in the system temp dir named from a
hash of the data, folds and recipes), so running the same command again resumes where it
stopped. One command, one JSON document
on stdout::

    python bench/signer_folds.py --data ../shared/data/real-dev ../shared/data/real-more \\
        --folds 3 --inner-folds 2 --seeds 0 1 2 \\
        --recipe A "..." --recipe B "..." --output bench/results/signer_folds.json

``ARGS`` of ``--recipe NAME ARGS`` is one quoted string of train.py flags without data
paths (e.g. ``"--config real --loss cosface --distance cosine"``). The single-recipe form
``python bench/signer_folds.py --folds 3 --seeds 0 1 -- <train.py flags>`` is one recipe named ``recipe``.

Why one file of ~700 lines: a benchmark is one script a user runs and reads as a whole
(folds, trainings, scoring, summary, CLI), and only its tests import its parts.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import re
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from datasets.errors import DataError, UsageError  # noqa: E402
from datasets.sequences import SequenceSet  # noqa: E402

DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "real-dev"
GROUPS = ("all", "multi_signer", "seen", "unseen")
KS = (1, 5)
GAP_KEYS = ("multi_signer_top1", "multi_signer_top5", "macro_top1")
RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
LEGACY_RECIPE = "recipe"      # the name of the recipe given after ``--``
DEFAULT_RECIPE = "default"    # no recipe at all: train.py's defaults


def signer_folds(signer_ids, labels, k: int, flag: str = "--folds") -> list[list[str]]:
    """Deterministic signer-disjoint folds of similar sample counts.

    Two signers who are the only people signing some gloss go into the same fold, so
    that gloss is absent from that fold's training set yet still answerable from the
    other person's samples: the unseen-gloss figure needs such queries. These groups
    are then taken from most to fewest samples (ties by first name) and each goes to
    the fold holding the fewest samples so far (ties: the lowest fold number).
    ``flag`` names the option that asked for ``k`` in error messages.
    """
    signer_ids, labels = np.asarray(signer_ids), np.asarray(labels)
    names, counts = np.unique(signer_ids, return_counts=True)
    if "" in set(names.tolist()):
        raise UsageError("signer-fold CV needs a signer id on every sample")
    if not 2 <= k <= len(names):
        raise UsageError(f"{flag} {k}: choose between 2 and the number of signers ({len(names)})")
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
        raise UsageError(f"{flag} {k}: the signers form only {len(groups)} groups")
    folds: list[list[str]] = [[] for _ in range(k)]
    sizes = np.zeros(k, np.int64)
    for g in groups:
        target = int(np.argmin(sizes))
        folds[target].extend(g)
        sizes[target] += sum(size[n] for n in g)
    return [sorted(f) for f in folds]


def answerable_count(labels, signer_ids) -> int:
    """How many samples have a gloss that another person of the same set also signs."""
    labels = np.asarray(labels, np.int64)
    if not len(labels):
        return 0
    names, person = np.unique(np.asarray(signer_ids), return_inverse=True)
    pairs = np.unique(labels * len(names) + person)                       # distinct (gloss, person)
    people = np.bincount(pairs // len(names), minlength=labels.max() + 1)  # people per gloss
    return int((people[labels] >= 2).sum())


def inner_folds(sequences: SequenceSet, train_people: list[str], k: int) -> list[list[str]]:
    """Person-disjoint folds of an outer fold's training people only (the nested selection's folds).

    Every inner held-out fold needs an answerable query, else its score cannot rank recipes.
    """
    keep = np.isin(sequences.signer_ids, train_people)
    signers, labels = sequences.signer_ids[keep], sequences.labels[keep]
    folds = signer_folds(signers, labels, k, flag="--inner-folds")
    for members in folds:
        inside = np.isin(signers, members)
        if not answerable_count(labels[inside], signers[inside]):
            raise UsageError(f"--inner-folds {k}: the inner fold {members} has no gloss two of its people sign, "
                             "so it cannot rank recipes (use fewer --inner-folds or --folds)")
    return folds


def fold_hits(embeddings: np.ndarray, held_out: SequenceSet, train_labels: np.ndarray,
              metric: str = "euclidean") -> dict[str, np.ndarray]:
    """Per-query hits among held-out people, as on an independent test set.

    Every sample of ``held_out`` (``embeddings`` row for row) is a query; its gallery is
    the other held-out people's samples: neither its own signer's (leave-one-signer-out)
    nor any training person's, who are simply not passed in. Returns boolean arrays
    ``top1``, ``top5``, ``answerable`` (another held-out person signs the gloss),
    ``seen`` (the gloss is in ``train_labels``) and the query's ``gloss`` id.
    """
    from evaluation.knn import exclusion_mask, pairwise_distances
    from evaluation.ranking import rank_by_nearest
    labels = held_out.labels
    distances = pairwise_distances(embeddings, embeddings, metric)                 # (Q, Q)
    excluded = exclusion_mask(held_out.signer_ids, held_out.signer_ids)           # same person
    ranking = rank_by_nearest(distances, labels, labels, len(held_out.label_names), excluded, max(KS))
    out = {f"top{k}": ranking.hits(k) for k in KS}
    out.update(answerable=ranking.eligible, seen=np.isin(labels, train_labels), gloss=labels.copy())
    return out


def macro_top1(top1: np.ndarray, glosses: np.ndarray) -> float:
    """Mean over glosses of each gloss's top-1, so a few very frequent glosses cannot dominate."""
    if not len(glosses):
        return float("nan")
    _, codes = np.unique(glosses, return_inverse=True)
    per_gloss = np.bincount(codes, weights=top1.astype(np.float64)) / np.bincount(codes)
    return float(per_gloss.mean())


def summarize_hits(hits: dict[str, np.ndarray]) -> dict:
    """Accuracies of the four query groups and the macro top-1 (nan where empty), and group sizes."""
    groups = {"all": np.ones_like(hits["answerable"]), "multi_signer": hits["answerable"],
              "seen": hits["answerable"] & hits["seen"], "unseen": hits["answerable"] & ~hits["seen"]}
    out = {}
    for name, keep in groups.items():
        out[f"{name}_n"] = int(keep.sum())
        for k in KS:
            out[f"{name}_top{k}"] = float(hits[f"top{k}"][keep].mean()) if keep.any() else float("nan")
    answerable = hits["answerable"]
    out["macro_top1"] = macro_top1(hits["top1"][answerable], hits["gloss"][answerable])
    return out


def gap(trained: dict, untrained: dict) -> dict:
    """Trained minus untrained on the headline figures: what training added to the starting network."""
    return {key: trained[key] - untrained[key] for key in GAP_KEYS}


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
    """The network training starts from (engine seeds torch with ``config.seed`` before building).

    Randomly initialised even when ``config.init_checkpoint`` is set: the baseline is the
    architecture before any training, pre-training included."""
    from models.spoter import SpoterConfig, build_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(SpoterConfig.from_dict(config.model_config(num_classes))).eval()


def recipe_config(name: str, flags: str):
    """One recipe's TrainConfig, checked before any training, so a bad flag costs no hours.

    ``flags`` is a shell-quoted string of train.py flags; argparse's own exit becomes
    one UsageError line naming the recipe.
    """
    from training.cli import config_from_args
    if not RECIPE_NAME.fullmatch(name):
        raise UsageError(f"--recipe {name!r}: a name is letters, digits, '.', '_' or '-' (it names files)")
    try:
        argv = shlex.split(flags)
    except ValueError as error:
        raise UsageError(f"--recipe {name}: {error}") from None
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            config, args = config_from_args(argv)
        if args.training_set_path is not None or args.validation_set_path is not None:  # either spelling
            raise UsageError("no data paths in a recipe; the data come from --data")
        config.check()
    except SystemExit:
        lines = messages.getvalue().strip().splitlines() or ["invalid train.py flags"]
        raise UsageError(f"--recipe {name}: {lines[-1].split('error: ', 1)[-1]}") from None
    except UsageError as error:
        raise UsageError(f"--recipe {name}: {error}") from None
    if config.classification_model:
        raise UsageError(f"--recipe {name}: signer folds evaluate embeddings; drop --classification_model")
    return config


@dataclass(frozen=True)
class Training:
    """One training of the protocol: a recipe and seed, trained on some people, scored on others.

    Its fields are also its identity in the work folder: stored scores are reused only for
    exactly the same training.
    """

    key: str                        # file name in the work folder
    recipe: str
    flags: str
    seed: int
    train_people: tuple[str, ...]
    held_out: tuple[str, ...]
    untrained: bool                 # also score the untrained network (the reported trainings)
    data: str = ""                  # data_fingerprint of the joined samples


def data_fingerprint(sequences: SequenceSet) -> str:
    """A short digest of which clips (video, person, gloss, length) the data hold: changed data is trained anew."""
    glosses = np.asarray(sequences.label_names)[sequences.labels]
    rows = np.stack([sequences.video_ids, sequences.signer_ids, glosses, sequences.lengths.astype(str)], axis=1)
    return hashlib.sha256("\n".join("\t".join(row) for row in rows.tolist()).encode()).hexdigest()[:16]


def _hits_to_json(hits: dict[str, np.ndarray]) -> dict:
    return {key: value.tolist() for key, value in hits.items()}


def _hits_from_json(stored: dict) -> dict[str, np.ndarray]:
    return {key: np.asarray(value, dtype=np.int64 if key == "gloss" else bool) for key, value in stored.items()}


def _stored(path: Path, training: Training) -> dict | None:
    """The scores a previous run stored for this very training, or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            stored = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None
    return stored if stored.get("training") == json.loads(json.dumps(asdict(training))) else None


def _training_data(sequences: SequenceSet, people) -> SequenceSet:
    """The training people's samples in their own vocabulary: held-out-only glosses stay unknown to training."""
    part = sequences.subset(np.flatnonzero(np.isin(sequences.signer_ids, people)))
    return part.with_label_names([sequences.label_names[i] for i in np.unique(part.labels)])


def _held_out_and_seen(sequences: SequenceSet, train_people, held_out_people) -> tuple[SequenceSet, np.ndarray]:
    """The held-out people's samples (the queries and their galleries) and the glosses training saw."""
    held_out = sequences.subset(np.flatnonzero(np.isin(sequences.signer_ids, held_out_people)))
    return held_out, np.unique(sequences.labels[np.isin(sequences.signer_ids, train_people)])


def _trained_model(config, train_set: SequenceSet, scratch: Path):
    """Train in-process through training.engine.train and return the final network."""
    from training import engine
    from models.checkpoint import load_checkpoint, model_from_checkpoint
    from training.data import TrainingData
    engine.train(config, data=TrainingData(train_set, None, list(train_set.label_names)), tracker=_NoTracking())
    return model_from_checkpoint(load_checkpoint(scratch / config.experiment_name / "last.pth"))


def run_training(training: Training, sequences: SequenceSet, config, work_dir: Path) -> dict:
    """Train and score one Training, or reuse the scores stored for it by an earlier run.

    Returns the stored document: ``trained`` (and ``untrained``) per-query hits as lists,
    ``train_seconds`` / ``seconds`` (wall time of the training / with its scoring) and
    ``resumed``.
    """
    from datasets.atomic import atomic_write
    path = work_dir / f"{training.key}.json"
    stored = _stored(path, training)
    if stored is not None:
        return {**stored, "resumed": True}
    started = time.perf_counter()
    train_set = _training_data(sequences, training.train_people)
    held_out, train_labels = _held_out_and_seen(sequences, training.train_people, training.held_out)
    with tempfile.TemporaryDirectory(prefix="train-", dir=work_dir) as scratch:
        run_config = replace(config, seed=training.seed, out_dir=scratch, experiment_name=training.key,
                             tracker="none", resume=False, validation_set_path="", eval_every=0, plot_every=0,
                             save_checkpoints_every=0, report_untrained=False,
                             training_set_path=f"signer folds: {training.key}")
        model = _trained_model(run_config, train_set, Path(scratch))
    train_seconds = time.perf_counter() - started
    document = {"training": asdict(training), "train_seconds": round(train_seconds, 2)}
    embeddings = {"trained": _embed(model, held_out, config)}
    if training.untrained:
        embeddings["untrained"] = _embed(untrained_model(run_config, len(train_set.label_names)), held_out, config)
    for which, values in embeddings.items():
        document[which] = _hits_to_json(fold_hits(values, held_out, train_labels, config.distance))
    document["seconds"] = round(time.perf_counter() - started, 2)
    with atomic_write(embeddings_path(work_dir, training), "wb") as handle:   # before the scores: they mark done
        np.savez(handle, **embeddings)
    with atomic_write(path, "w") as handle:
        json.dump(document, handle)
    return {**document, "resumed": False}


def embeddings_path(work_dir: Path, training: Training) -> Path:
    """Where a training's held-out embeddings are kept (``trained``, and ``untrained`` when scored)."""
    return work_dir / f"{training.key}.npz"


def unit_concatenation(members: list[np.ndarray]) -> np.ndarray:
    """The ensemble embedding: each member's rows scaled to unit length, side by side, over sqrt(count).

    Its cosine similarity is the mean of the members' cosine similarities, so no member
    outweighs another by the scale of its embeddings."""
    units = [m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12) for m in members]
    return np.concatenate(units, axis=1) / np.sqrt(len(units))


def seed_ensemble(reported: list[tuple[int, int, dict]], sequences: SequenceSet, work_dir: Path,
                  distances: dict[str, str]) -> dict | None:
    """The reported seeds of each outer fold as one model (:func:`unit_concatenation`), trained and untrained.

    Why: several seeds of one recipe cost several trainings; this says what they add on new
    people over one seed, beside the ensemble of their untrained networks. ``distances`` maps
    a recipe to its kNN distance. None with one seed, or when a training's embeddings were not
    kept (scores stored by an older run).
    """
    folds = sorted({f for f, _, _ in reported})
    seeds = sorted({seed for _, seed, _ in reported})
    if len(seeds) < 2:
        return None
    pooled = {"trained": [], "untrained": []}
    per_fold = []
    for f in folds:
        documents = [d for g, _, d in reported if g == f]
        paths = [embeddings_path(work_dir, Training(**d["training"])) for d in documents]
        if not all(p.is_file() for p in paths):
            return None
        stored = []
        for path in paths:
            with np.load(path, allow_pickle=False) as arrays:
                stored.append({name: arrays[name] for name in arrays.files})
        training = documents[0]["training"]
        held_out, train_labels = _held_out_and_seen(sequences, training["train_people"], training["held_out"])
        figures = {}
        for which in pooled:
            hits = fold_hits(unit_concatenation([e[which] for e in stored]), held_out, train_labels,
                             distances[training["recipe"]])
            pooled[which].append(hits)
            figures[which] = summarize_hits(hits)
        per_fold.append({"fold": f, **figures, "gap": gap(figures["trained"], figures["untrained"])})
    out = {which: summarize_hits(_concat(parts)) for which, parts in pooled.items()}
    return {"members": seeds, **out, "gap": gap(out["trained"], out["untrained"]), "per_fold": per_fold}


def choose_recipe(inner_scores: dict[str, list[dict]]) -> tuple[str, dict[str, float | None]]:
    """The recipe with the best mean inner multi_signer top-1 (ties: the first one given)."""
    means = {}
    for name, summaries in inner_scores.items():
        values = np.asarray([s["multi_signer_top1"] for s in summaries], np.float64)
        means[name] = float(np.nanmean(values)) if np.isfinite(values).any() else None
    ranked = [name for name in inner_scores if means[name] is not None]
    chosen = max(ranked, key=lambda name: means[name]) if ranked else next(iter(inner_scores))
    return chosen, means


class _Progress:
    """A tqdm bar over trainings plus one JSON line per finished training (partial results survive)."""

    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm
        self.enabled = enabled
        self.bar = tqdm(total=total, desc="trainings", unit="training", disable=not enabled, file=sys.stderr)

    def done(self, document: dict) -> None:
        if self.enabled:
            t = document["training"]
            line = {"training": t["key"], "resumed": document["resumed"], "seconds": document.get("seconds"),
                    "multi_signer_top1": summarize_hits(_hits_from_json(document["trained"]))["multi_signer_top1"]}
            if "untrained" in document:
                line["untrained_multi_signer_top1"] = summarize_hits(
                    _hits_from_json(document["untrained"]))["multi_signer_top1"]
            self.bar.write(json.dumps(_clean(line)), file=sys.stderr)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class _Trainings:
    """Runs the protocol's trainings one by one: resumed or trained, counted on the bar, kept for the timings."""

    def __init__(self, sequences: SequenceSet, recipes: dict[str, str], configs: dict, work_dir: Path,
                 bar: _Progress):
        self.sequences, self.recipes, self.configs, self.work_dir, self.bar = sequences, recipes, configs, work_dir, bar
        self.data = data_fingerprint(sequences)
        self.documents: list[dict] = []

    def __call__(self, key: str, recipe: str, seed: int, people, held_out, untrained: bool) -> dict:
        training = Training(key, recipe, self.recipes[recipe], seed, tuple(people), tuple(held_out), untrained,
                            self.data)
        self.documents.append(run_training(training, self.sequences, self.configs[recipe], self.work_dir))
        self.bar.done(self.documents[-1])
        return self.documents[-1]

    def timings(self) -> dict:
        done = self.documents
        return {"trainings": [{"training": d["training"]["key"], "train_seconds": d["train_seconds"],
                               "seconds": d["seconds"], "resumed": d["resumed"]} for d in done],
                "train_seconds": round(sum(d["train_seconds"] for d in done if not d["resumed"]), 1)}


def select_recipe(trainings: _Trainings, fold: int, train_people: list[str], parts: list[list[str]],
                  seed: int) -> dict:
    """Train every recipe on each inner part of one outer fold's training people and choose the best."""
    inner_scores = {}
    for recipe in trainings.configs:
        inner_scores[recipe] = []
        for j, part in enumerate(parts):
            document = trainings(f"outer{fold}-inner{j}-{recipe}-seed{seed}", recipe, seed,
                                 [s for s in train_people if s not in part], part, False)
            inner_scores[recipe].append(summarize_hits(_hits_from_json(document["trained"])))
    chosen, means = choose_recipe(inner_scores)
    return {"chosen": chosen, "inner_folds": parts, "inner_multi_signer_top1": means, "inner": inner_scores}


def run(sequences: SequenceSet, recipes: dict[str, str], folds: int = 3, inner: int = 2, seeds=(0,),
        work_dir: str | None = None, progress: bool = False) -> dict:
    """The whole nested protocol; returns the JSON-ready report.

    ``recipes`` maps a name to its train.py flag string. ``work_dir`` keeps each
    training's scores for resuming; None uses a temporary folder (no resuming).
    Folds and recipes are all checked before the first training.
    """
    started = time.perf_counter()
    configs = {name: recipe_config(name, flags) for name, flags in recipes.items()}
    seeds = [int(s) for s in seeds]
    nested = len(configs) > 1
    outer = signer_folds(sequences.signer_ids, sequences.labels, folds)
    everyone = sorted(set(sequences.signer_ids.tolist()))
    train_people = [[s for s in everyone if s not in held] for held in outer]
    inner_sets = [inner_folds(sequences, people, inner) if nested else [] for people in train_people]
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="signer_folds_"))
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        total = folds * (inner * len(configs) * nested + len(seeds))
        trainings = _Trainings(sequences, recipes, configs, Path(work_dir),
                               stack.enter_context(contextlib.closing(_Progress(total, progress))))
        selection, reported = [], []
        for f, held in enumerate(outer):
            entry = {"fold": f, "held_out": held, "chosen": next(iter(configs))}
            if nested:
                entry.update(select_recipe(trainings, f, train_people[f], inner_sets[f], seeds[0]))
            selection.append(entry)
            reported += [(f, seed, trainings(f"outer{f}-{entry['chosen']}-seed{seed}", entry["chosen"], seed,
                                             train_people[f], held, True)) for seed in seeds]
        distances = {name: config.distance for name, config in configs.items()}
        ensemble = seed_ensemble(reported, sequences, Path(work_dir), distances)
    figures = _figures(reported, seeds)
    report = {"samples": len(sequences), "signers": len(everyone), "glosses": int(len(np.unique(sequences.labels))),
              "folds": outer, "inner_folds": inner if nested else None, "seeds": seeds, "recipes": dict(recipes),
              **{key: figures.pop(key) for key in ("gap", "trained", "untrained")}, "seed_ensemble": ensemble,
              "selection": selection, **figures}
    report["timings"] = {**trainings.timings(), "total_seconds": round(time.perf_counter() - started, 1)}
    return _clean(report)


def _figures(reported: list[tuple[int, int, dict]], seeds: list[int]) -> dict:
    """Trained, untrained and gap figures of the reported trainings, spread over seeds and folds."""
    out, per_seed, per_fold = {}, {}, {}
    for which in ("trained", "untrained"):
        hits = [(f, seed, _hits_from_json(d[which])) for f, seed, d in reported]
        per_fold[which] = [summarize_hits(h) for _, _, h in hits]
        per_seed[which] = [summarize_hits(_concat([h for _, s, h in hits if s == seed])) for seed in seeds]
    per_seed["gap"] = [gap(t, u) for t, u in zip(per_seed["trained"], per_seed["untrained"])]
    per_fold["gap"] = [gap(t, u) for t, u in zip(per_fold["trained"], per_fold["untrained"])]
    for which in ("gap", "trained", "untrained"):
        out[which] = _spread(per_seed[which], per_fold[which])
    out["per_seed"] = per_seed
    out["per_fold"] = [{"fold": f, "seed": seed, "recipe": d["training"]["recipe"],
                        **{which: per_fold[which][i] for which in ("trained", "untrained", "gap")}}
                       for i, (f, seed, d) in enumerate(reported)]
    return out


def _clean(value):
    """NaN -> None (JSON has no NaN), floats rounded to 4 places."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return round(value, 4) if np.isfinite(value) else None
    return value


def load_data(paths) -> SequenceSet:
    """Every source joined, glosses merged by name; signer ids are kept, so one person in two sources is one person."""
    from datasets.loading import load_sequence_set
    from datasets.sequences import concatenate
    for path in paths:
        if not Path(path).exists():
            raise DataError(f"{path}: dataset not found")
    sets = [load_sequence_set(path) for path in paths]
    return sets[0] if len(sets) == 1 else concatenate(sets)


def default_work_dir(paths, folds: int, inner: int, recipes: dict[str, str]) -> Path:
    """A temp-dir folder named from what decides the trainings, so the same command finds its earlier scores.

    Seeds are not part of the name: adding a seed reuses the trainings already done.
    """
    what = {"data": [str(Path(p).resolve()) for p in paths], "folds": folds, "inner_folds": inner,
            "recipes": sorted(recipes.items())}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"signer_folds-{digest}"


def split_recipes(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Take ``--recipe NAME ARGS`` and a ``-- <flags>`` tail out of the command line.

    Done before argparse, which would otherwise read a recipe's train.py flags (such as a
    lone ``--canonical_handedness``) as options of this script. No recipe at all means
    train.py's defaults.
    """
    rest, recipes, legacy = [], {}, None
    i = 0
    while i < len(argv):
        if argv[i] == "--":
            legacy = shlex.join(argv[i + 1:])
            break
        if argv[i] == "--recipe":
            if i + 2 >= len(argv):
                raise UsageError("--recipe takes a NAME and one quoted string of train.py flags")
            name, flags = argv[i + 1], argv[i + 2]
            if name in recipes:
                raise UsageError(f"--recipe {name}: given twice")
            recipes[name] = flags
            i += 3
            continue
        rest.append(argv[i])
        i += 1
    if legacy is not None and recipes:
        raise UsageError("give recipes either with --recipe NAME ARGS or after --, not both")
    if legacy is not None:
        recipes = {LEGACY_RECIPE: legacy}
    return rest, recipes or {DEFAULT_RECIPE: ""}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Recipes: --recipe NAME ARGS (several for a nested choice), or one recipe as train.py flags after --.")
    parser.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)], metavar="PATH",
                        help="landmark folders or SPOTER CSVs with signer ids, joined (default: real-dev)")
    parser.add_argument("--recipe", nargs=2, action="append", metavar=("NAME", "ARGS"),
                        help="a recipe: its name and one quoted string of train.py flags without data paths")
    parser.add_argument("--folds", type=int, default=3, help="outer person-disjoint folds (reported)")
    parser.add_argument("--inner-folds", type=int, default=2,
                        help="inner person-disjoint folds of each outer fold's training people (recipe choice)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds of the reported "
                                                                             "trainings (inner ones use the first)")
    parser.add_argument("--work-dir", help="where each finished training's scores are kept for resuming "
                                           "(default: a folder in the temp dir named from the arguments)")
    parser.add_argument("--output", help="also write the JSON here (atomically)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest for these small models on a busy machine)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-training lines on stderr")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rest, recipes = split_recipes(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(rest)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    work_dir = Path(args.work_dir) if args.work_dir else default_work_dir(args.data, args.folds, args.inner_folds,
                                                                          recipes)
    try:
        for name, flags in recipes.items():     # bad flags fail before any data is read
            recipe_config(name, flags)
        sequences = load_data(args.data)
        if not args.quiet:
            print(f"work folder: {work_dir}", file=sys.stderr)
        report = run(sequences, recipes, args.folds, args.inner_folds, tuple(args.seeds), work_dir,
                     progress=not args.quiet)
    except ValueError as error:            # UsageError, DataError
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = {"data": [Path(p).name for p in args.data], **report}
    text = json.dumps(report, indent=2)
    if args.output:
        from datasets.atomic import atomic_write
        with atomic_write(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
