"""Landmark folder + index → SPOTER train/val(/test) CSVs (``preprocessing.py create``).

Decisions worth knowing:

* **Only usable samples count.** Every landmark file the index names is loaded first;
  missing, unreadable, wrongly shaped, non-finite or empty ones are skipped and
  reported. Gloss frequencies (``num_classes``), the new split and the label ids are
  then computed from the usable samples only, so the good items of a run with bad
  files present come out byte-identical to a run whose index never named the bad ones.
* **Label ids** are the kept glosses in sorted (code point) order: ``id_to_label.json``
  and the ``labels`` column of both CSVs use the same ids, whatever the index order.
* **num_classes** keeps the N glosses with the most usable samples; ties are broken by
  gloss name, so the choice is deterministic.
* **Split.** By default the index's own: ``train`` goes to ``<name>_train.csv``. When the
  index has both a validation split (``val``, ``validation`` or ``dev``) and ``test``, as
  WLASL's does, they stay apart: ``<name>_val.csv`` (for choosing the checkpoint) and
  ``<name>_test.csv`` (for reporting it, never seen during training or selection). Merging
  them would choose the model on the very samples it is then scored on. When the index
  has only one of them, it goes to ``<name>_val.csv`` as before (a warning says that this
  file then serves both purposes). Entries with any other split name (or none) are left
  out and counted per name in the report. With ``create_new_split`` the index's split is
  ignored (no test file is written) and either

  - ``stratified``: per gloss, ``round(n * test_size)`` samples (at least 1 and at most
    ``n - 1`` when ``n >= 2``; a gloss with one sample stays in train) go to val. Each
    gloss draws from its own generator seeded by ``(seed, crc32(gloss))`` over its
    samples sorted by video id, so a gloss's split does not depend on the other glosses;
  - ``signer``: signers are shuffled by a generator seeded with ``seed`` and taken in
    that order into val whenever that brings val's share of samples closer to
    ``test_size`` (never all of them), so no signer appears in both files.

  The ``split`` column of the output holds ``train``, ``val`` or ``test``, the file it is in.
* **Trimming.** A WLASL frame range (``frame_start``/``frame_end``) is applied when the
  file holds the whole video. ``extract --index`` may have trimmed already: when the
  landmark folder's ``manifest.csv`` (or a shard's ``manifest-<i>-of-<N>.csv``) lists a
  video with a non-default range, its file already holds only those frames and is not
  cut again (a manifest range that differs from the index's is reported and the sample
  skipped). ``trim=False`` never trims.
* **Rows** of each CSV are sorted by (label, video id). Every output file is written
  atomically; ``create_report.json`` lists everything skipped or dropped.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets import layout
from datasets.atomic import atomic_write
from datasets.errors import DataError, UsageError
from datasets.landmark_folder import IndexEntry, landmark_file, load_raw_landmarks, read_index
from datasets.landmark_folder import trim as apply_frame_range
from datasets.loading import LANDMARKS_SUBDIR, find_index
from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = "train", "val", "test"
VALIDATION_NAMES = ("val", "validation", "dev")  # index split names of a validation split
VAL_SPLIT_NAMES = (*VALIDATION_NAMES, TEST)  # held-out names; all go to the val file when there is no test file
SPLIT_METHODS = ("stratified", "signer")
LABELS_FILE = "id_to_label.json"
REPORT_FILE = "create_report.json"
_DEFAULT_RANGE = (1, -1)


@dataclass
class CreationReport:
    """What :func:`create_dataset` wrote, skipped and dropped (also saved as ``create_report.json``)."""

    train_file: str
    val_file: str
    labels_file: str
    report_file: str
    split_method: str  # "index", "stratified" or "signer"
    test_file: str = ""  # "" when no test file was written (the index has no separate val and test)
    index_entries: int = 0
    train_samples: int = 0
    val_samples: int = 0
    test_samples: int = 0
    label_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (video_id, reason), bad items
    other_splits: dict[str, int] = field(default_factory=dict)  # index split name -> entries left out
    dropped_glosses: list[str] = field(default_factory=list)  # beyond num_classes
    dropped_samples: int = 0
    single_sample_glosses: list[str] = field(default_factory=list)
    glosses_without_train_samples: list[str] = field(default_factory=list)
    glosses_without_val_samples: list[str] = field(default_factory=list)
    glosses_without_test_samples: list[str] = field(default_factory=list)  # with a test file only
    val_signers: list[str] = field(default_factory=list)  # signer split only
    trimmed: int = 0  # samples cut to their index frame range here
    pre_trimmed: int = 0  # samples whose file extract had already trimmed (not cut again)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def total_samples(self) -> int:
        return self.train_samples + self.val_samples + self.test_samples

    @property
    def val_share(self) -> float:
        return self.val_samples / self.total_samples if self.total_samples else 0.0

    @property
    def test_share(self) -> float:
        return self.test_samples / self.total_samples if self.total_samples else 0.0

    def to_dict(self) -> dict:
        document = asdict(self)
        document["skipped"] = [{"video_id": v, "reason": r} for v, r in self.skipped]
        document.update(num_classes=self.num_classes, val_share=round(self.val_share, 6),
                        test_share=round(self.test_share, 6))
        return document


@dataclass
class _Sample:
    entry: IndexEntry
    target: str  # TRAIN, VAL or TEST (or "" until a new split assigns it)
    spoter: np.ndarray  # (T, 54, 2); mapped file by file (faster than one big array: it stays in cache)


def resolve_landmarks_dir(landmarks_dir: str | os.PathLike) -> Path:
    """The folder holding the landmark files: ``landmarks_dir`` or its ``landmarks/`` sub-folder."""
    folder = Path(landmarks_dir)
    if not folder.is_dir():
        raise UsageError(f"landmarks folder {folder} does not exist or is not a folder")
    return folder / LANDMARKS_SUBDIR if (folder / LANDMARKS_SUBDIR).is_dir() else folder


def read_extraction_ranges(landmarks_dir: Path) -> dict[str, tuple[int, int]]:
    """``video → (frame_start, frame_end)`` that ``extract`` already applied, from its manifest(s)."""
    ranges: dict[str, tuple[int, int]] = {}
    manifests = sorted(p for p in landmarks_dir.glob("manifest*.csv")
                       if p.name == "manifest.csv" or p.name.startswith("manifest-"))
    for path in manifests:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if not {"video", "frame_start", "frame_end"} <= set(columns):
                continue  # a manifest without ranges: nothing was trimmed
            for r, row in enumerate(reader, start=2):
                try:
                    ranges[row["video"]] = (int(row["frame_start"]), int(row["frame_end"]))
                except (TypeError, ValueError):
                    raise DataError(f"{path}: row {r}: frame_start/frame_end must be integers, got "
                                    f"{row['frame_start']!r}, {row['frame_end']!r}") from None
    return ranges


def _check_arguments(name, num_classes, split, test_size, seed) -> None:
    if not name or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise UsageError(f"dataset name {name!r} must be a plain file-name prefix")
    if num_classes is not None and num_classes < 1:
        raise UsageError(f"num_classes must be >= 1, got {num_classes}")
    if split not in SPLIT_METHODS:
        raise UsageError(f"split must be one of {', '.join(SPLIT_METHODS)}, got {split!r}")
    if not 0.0 < test_size < 1.0:
        raise UsageError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}")


def _unique_entries(entries: list[IndexEntry], skipped: list) -> list[IndexEntry]:
    """Drop repeated video ids: a repeat with the same gloss is ignored, conflicting glosses drop all."""
    glosses: dict[str, set] = {}
    for e in entries:
        glosses.setdefault(e.video_id, set()).add(e.gloss)
    seen, unique = set(), []
    for e in entries:
        if len(glosses[e.video_id]) > 1:
            if e.video_id not in seen:
                skipped.append((e.video_id, "listed under several glosses in the index: "
                                + ", ".join(sorted(glosses[e.video_id]))))
        elif e.video_id in seen:
            skipped.append((e.video_id, "listed again in the index (same gloss); the first entry is used"))
        else:
            unique.append(e)
        seen.add(e.video_id)
    return unique


def _load(folder: Path, entry: IndexEntry, extracted_range, trim_frames: bool) -> tuple[np.ndarray, str]:
    """One sample's SPOTER points and how it was trimmed (``""``, ``"here"`` or ``"extract"``)."""
    raw = load_raw_landmarks(landmark_file(folder, entry), entry.frame_size)
    wanted = (entry.frame_start, entry.frame_end)
    how = ""
    if trim_frames and wanted != _DEFAULT_RANGE:
        if extracted_range is not None and extracted_range != _DEFAULT_RANGE:
            if extracted_range != wanted:
                raise DataError(f"{entry.video_id}: extracted with frame range {extracted_range[0]}.."
                                f"{extracted_range[1]} (manifest) but the index says {wanted[0]}..{wanted[1]}; "
                                "re-extract it")
            how = "extract"
        else:
            raw = apply_frame_range(raw, *wanted)
            how = "here"
            if len(raw) == 0:
                raise DataError(f"{entry.video_id}: frame range {wanted[0]}..{wanted[1]} is empty "
                                f"(the file has fewer frames)")
    return layout.raw_to_spoter(raw), how


def index_targets(splits: list[str]) -> dict[str, str]:
    """Which file each index split name goes to: ``train``, ``val`` or ``test`` (others: absent).

    A ``test`` file exists only when the index also has a validation split; otherwise
    every held-out name goes to ``val``, as before the test file existed.
    """
    names = {s.lower() for s in splits}
    separate_test = TEST in names and bool(names & set(VALIDATION_NAMES))
    targets = {}
    for split in set(splits):
        lowered = split.lower()
        if lowered == TRAIN:
            targets[split] = TRAIN
        elif lowered == TEST and separate_test:
            targets[split] = TEST
        elif lowered in VAL_SPLIT_NAMES:
            targets[split] = VAL
    return targets


def _gloss_rng(seed: int, gloss: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(gloss.encode("utf-8"))])


def stratified_split(glosses: list[str], video_ids: list[str], test_size: float, seed: int) -> np.ndarray:
    """Boolean "goes to val" per sample: per gloss a seeded share ``test_size`` (see module doc)."""
    is_val = np.zeros(len(glosses), dtype=bool)
    members: dict[str, list[int]] = {}
    for i, gloss in enumerate(glosses):
        members.setdefault(gloss, []).append(i)
    for gloss, indices in members.items():
        n = len(indices)
        if n < 2:
            continue
        count = min(max(int(np.floor(n * test_size + 0.5)), 1), n - 1)
        ordered = sorted(indices, key=lambda i: video_ids[i])
        chosen = _gloss_rng(seed, gloss).permutation(n)[:count]
        is_val[[ordered[k] for k in chosen]] = True
    return is_val


def signer_split(signer_ids: list[str], test_size: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """Boolean "goes to val" per sample with whole signers held out, and the val signers."""
    missing = [i for i, s in enumerate(signer_ids) if not s]
    if missing:
        raise DataError(f"a signer split needs a signer_id for every sample; {len(missing)} sample(s) have none")
    counts = Counter(signer_ids)
    signers = sorted(counts)
    if len(signers) < 2:
        raise UsageError(f"a signer split needs at least two signers, found {len(signers)} ({', '.join(signers)})")
    total, target = len(signer_ids), test_size * len(signer_ids)
    val: list[str] = []
    size = 0
    for k in np.random.default_rng(seed).permutation(len(signers)):
        signer = signers[k]
        grown = size + counts[signer]
        if grown < total and abs(grown - target) < abs(size - target):
            val.append(signer)
            size = grown
    if not val:  # every signer alone overshoots twice the target: take the one closest to it
        val.append(min(signers, key=lambda s: (abs(counts[s] - target), s)))
    chosen = set(val)
    return np.asarray([s in chosen for s in signer_ids], dtype=bool), sorted(val)


def create_dataset(
    landmarks_dir: str | os.PathLike,
    index: str | os.PathLike | None,
    dataset_folder: str | os.PathLike,
    name: str = "dataset",
    num_classes: int | None = None,
    create_new_split: bool = False,
    split: str = "stratified",
    test_size: float = 0.2,
    seed: int = 0,
    trim: bool = True,
    progress: bool = False,
) -> CreationReport:
    """Write ``<name>_train.csv``, ``<name>_val.csv``, ``id_to_label.json`` and ``create_report.json``,
    plus ``<name>_test.csv`` when the index has both a validation and a test split.

    ``index`` None means ``index.json`` or ``index.csv`` in ``landmarks_dir``. Bad landmark
    files are skipped and reported, never fatal; impossible requests (empty output, a bad
    argument, an unreadable index) raise :class:`UsageError` / :class:`DataError` with a
    one-line message. The steps below run in this order, each filling its part of the report.
    """
    _check_arguments(name, num_classes, split, test_size, seed)
    folder = resolve_landmarks_dir(landmarks_dir)
    index = Path(index) if index is not None else find_index(Path(landmarks_dir))
    if not index.is_file():
        raise UsageError(f"index {index} does not exist or is not a file")
    out = Path(dataset_folder)
    if out.exists() and not out.is_dir():
        raise UsageError(f"dataset folder {out} exists and is not a folder")
    report = CreationReport(
        train_file=str(out / f"{name}_{TRAIN}.csv"), val_file=str(out / f"{name}_{VAL}.csv"),
        labels_file=str(out / LABELS_FILE), report_file=str(out / REPORT_FILE),
        split_method=split if create_new_split else "index")

    entries, targets = _index_entries(index, create_new_split, report, out / f"{name}_{TEST}.csv")
    samples = _load_samples(folder, entries, targets, trim, progress, report)
    samples = _keep_glosses(samples, num_classes, report)
    if create_new_split:
        _draw_split(samples, split, test_size, seed, report)
    by_file = _group_by_file(samples, writes_test=bool(report.test_file), create_new_split=create_new_split,
                             report=report)
    _report_coverage(samples, by_file, report)
    _write_outputs(by_file, report, stale_test=out / f"{name}_{TEST}.csv")
    return report


def _index_entries(index: Path, create_new_split: bool, report: CreationReport,
                   test_path: Path) -> tuple[list[IndexEntry], dict[str, str]]:
    """The index's entries that go to some file, and that file per video id ("" when a new split decides).

    Sets ``report.test_file`` when the index's own split has a separate test part.
    """
    entries = read_index(index)
    report.index_entries = len(entries)
    entries = _unique_entries(entries, report.skipped)
    file_of = index_targets([e.split for e in entries])
    targets = {}
    for e in entries:
        if create_new_split:
            targets[e.video_id] = ""
        elif e.split in file_of:
            targets[e.video_id] = file_of[e.split]
        else:
            report.other_splits[e.split] = report.other_splits.get(e.split, 0) + 1
    if not create_new_split and TEST in file_of.values():
        report.test_file = str(test_path)
    elif not create_new_split and any(s.lower() == TEST for s in file_of):
        log.warning("the index has a test split but no val split: its test entries go to %s, so choosing "
                    "the checkpoint on that file and reporting on it use the same samples", report.val_file)
    if report.other_splits:
        log.warning("left out %d index entries whose split is neither train nor %s: %s",
                    sum(report.other_splits.values()), "/".join(VAL_SPLIT_NAMES),
                    ", ".join(f"{other or '(empty)'}: {n}" for other, n in sorted(report.other_splits.items())))
    entries = [e for e in entries if e.video_id in targets]
    if not create_new_split and not entries:
        raise UsageError(f"{index}: no entry has the split train or {'/'.join(VAL_SPLIT_NAMES)} (found: "
                         f"{', '.join(repr(s) for s in sorted(report.other_splits)) or 'no entries'}); "
                         "draw one with --create-new-split")
    return entries, targets


def _load_samples(folder: Path, entries: list[IndexEntry], targets: dict[str, str], trim: bool,
                  progress: bool, report: CreationReport) -> list[_Sample]:
    """Every entry's landmarks in the SPOTER layout; bad files go to ``report.skipped``, never fatal."""
    extracted = read_extraction_ranges(folder) if trim else {}
    samples: list[_Sample] = []
    for entry in tqdm(entries, desc="loading landmarks", unit="file", disable=not progress):
        try:
            spoter, how = _load(folder, entry, extracted.get(entry.video_id), trim)
        except DataError as error:
            report.skipped.append((entry.video_id, str(error)))
            continue
        report.trimmed += how == "here"
        report.pre_trimmed += how == "extract"
        samples.append(_Sample(entry, targets[entry.video_id], spoter))
    if report.skipped:
        shown = "; ".join(f"{v}: {r}" for v, r in report.skipped[:5])
        log.warning("skipped %d of %d index entries: %s%s", len(report.skipped), report.index_entries, shown,
                    " ..." if len(report.skipped) > 5 else "")
    return samples


def _keep_glosses(samples: list[_Sample], num_classes: int | None, report: CreationReport) -> list[_Sample]:
    """The samples of the ``num_classes`` glosses with the most usable samples (ties by name)."""
    counts = Counter(s.entry.gloss for s in samples)
    ranked = sorted(counts, key=lambda g: (-counts[g], g))
    kept = set(ranked if num_classes is None else ranked[:num_classes])
    if num_classes is not None and num_classes > len(ranked):
        log.warning("asked for %d classes but only %d glosses have usable samples", num_classes, len(ranked))
    report.dropped_glosses = sorted(set(ranked) - kept)
    report.dropped_samples = sum(counts[g] for g in report.dropped_glosses)
    report.label_names = sorted(kept)
    samples = [s for s in samples if s.entry.gloss in kept]
    if not samples:
        raise UsageError(f"no usable samples: {len(report.skipped)} skipped, "
                         f"{sum(report.other_splits.values())} in other splits (see the log)")
    return samples


def _draw_split(samples: list[_Sample], split: str, test_size: float, seed: int, report: CreationReport) -> None:
    """Set each sample's target to train or val by the chosen new-split method."""
    if split == "stratified":
        is_val = stratified_split([s.entry.gloss for s in samples], [s.entry.video_id for s in samples],
                                  test_size, seed)
    else:
        is_val, report.val_signers = signer_split([s.entry.signer_id for s in samples], test_size, seed)
    for sample, val in zip(samples, is_val):
        sample.target = VAL if val else TRAIN


def _group_by_file(samples: list[_Sample], writes_test: bool, create_new_split: bool,
                   report: CreationReport) -> dict[str, list[_Sample]]:
    """Samples per output file, each sorted by (label, video id); an empty file is an error."""
    label_of = {g: i for i, g in enumerate(report.label_names)}
    by_file = {TRAIN: [], VAL: [], **({TEST: []} if writes_test else {})}
    for sample in sorted(samples, key=lambda s: (label_of[s.entry.gloss], s.entry.video_id)):
        by_file[sample.target].append(sample)
    for target, chosen in by_file.items():
        if not chosen:
            raise UsageError(f"no samples for the {target} file ({len(samples)} usable samples, all in the other "
                             f"file{'s' if len(by_file) > 2 else ''})"
                             + ("" if create_new_split else "; draw a new split with --create-new-split"))
    report.train_samples, report.val_samples = len(by_file[TRAIN]), len(by_file[VAL])
    report.test_samples = len(by_file.get(TEST, []))
    return by_file


def _report_coverage(samples: list[_Sample], by_file: dict[str, list[_Sample]], report: CreationReport) -> None:
    """Which glosses have a single sample, or none in train / val / test: in the report and the log."""
    kept = set(report.label_names)
    if TEST in by_file:
        report.glosses_without_test_samples = sorted(kept - {s.entry.gloss for s in by_file[TEST]})
    final_counts = Counter(s.entry.gloss for s in samples)
    report.single_sample_glosses = sorted(g for g, n in final_counts.items() if n == 1)
    report.glosses_without_train_samples = sorted(kept - {s.entry.gloss for s in by_file[TRAIN]})
    report.glosses_without_val_samples = sorted(kept - {s.entry.gloss for s in by_file[VAL]})
    if report.single_sample_glosses:
        log.warning("%d gloss(es) have a single sample: %s", len(report.single_sample_glosses),
                    ", ".join(report.single_sample_glosses[:10]))
    if report.glosses_without_train_samples:
        log.warning("%d gloss(es) have no training sample: %s", len(report.glosses_without_train_samples),
                    ", ".join(report.glosses_without_train_samples[:10]))


def _write_outputs(by_file: dict[str, list[_Sample]], report: CreationReport, stale_test: Path) -> None:
    """The CSVs, ``id_to_label.json`` and ``create_report.json``, each written atomically."""
    label_of = {g: i for i, g in enumerate(report.label_names)}
    paths = {TRAIN: report.train_file, VAL: report.val_file, TEST: report.test_file}
    for target, chosen in by_file.items():
        dataset = SequenceSet.from_sequences(
            [s.spoter for s in chosen], [label_of[s.entry.gloss] for s in chosen], report.label_names,
            video_ids=[s.entry.video_id for s in chosen], signer_ids=[s.entry.signer_id for s in chosen],
            splits=[target] * len(chosen))
        write_spoter_csv(dataset, paths[target])
    if TEST not in by_file and stale_test.is_file():  # not deleted: it may be the user's own file
        log.warning("%s is not part of this split (an earlier run's?); do not evaluate on it", stale_test)
    with atomic_write(report.labels_file, "w") as handle:
        json.dump({str(i): g for i, g in enumerate(report.label_names)}, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    with atomic_write(report.report_file, "w") as handle:
        json.dump(report.to_dict(), handle, indent=1, ensure_ascii=False)
        handle.write("\n")


__all__ = ["CreationReport", "create_dataset", "index_targets", "read_extraction_ranges", "resolve_landmarks_dir",
           "signer_split", "stratified_split", "SPLIT_METHODS", "VAL_SPLIT_NAMES", "VALIDATION_NAMES"]
