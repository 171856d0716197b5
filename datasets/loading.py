"""One entry point for every dataset source, so training and evaluation never care about formats."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from datasets import cache as dataset_cache
from datasets import formats
from datasets.errors import DataError, UsageError
from datasets import personal_dictionary
from datasets.landmark_folder import IndexEntry, landmark_file, read_index, read_landmark_folder
from datasets.sequences import SequenceSet
from datasets.spoter_csv import read_spoter_csv

log = logging.getLogger(__name__)

INDEX_NAMES = ("index.json", "index.csv", "train.csv")  # looked for, in this order (train.csv: Kaggle ISLR)
LANDMARKS_SUBDIR = "landmarks"
LABEL_NAMES_FILE = "id_to_label.json"  # beside a SPOTER CSV


def load_sequence_set(
    source: str | os.PathLike,
    index: str | os.PathLike | None = None,
    split: str | None = None,
    label_names: Sequence[str] | None = None,
    cache: bool | str | os.PathLike = True,
    progress: bool = False,
    skipped: list[tuple[str, str]] | None = None,
) -> SequenceSet:
    """Load a SPOTER CSV file, a landmark folder (one file per clip, any format, plus an index)
    or a personal dictionary ``.json`` exported by the web demo (:mod:`datasets.personal_dictionary`).

    A folder's index defaults to ``index.json`` then ``index.csv`` inside it; its files
    may sit in the folder itself or in ``landmarks/``. ``split`` keeps one split;
    ``label_names`` re-indexes labels into that vocabulary (an unknown gloss is an
    error). ``cache`` is True (default cache folder), False, or a cache folder.
    Unreadable landmark files are skipped and logged; a bad CSV raises :class:`DataError`.
    ``skipped``, when given, receives ``(video_id, reason)`` for each skipped file of the
    kept split, so a caller can refuse to go on without them.
    """
    source = Path(source)
    cache_dir = None if cache is True else cache
    use_cache = cache is not False
    if source.is_dir():
        dataset, folder_skipped = _load_folder(source, index, use_cache, cache_dir, progress)
        if skipped is not None and folder_skipped:
            skipped.extend(_in_split(folder_skipped, source, index, split))
    elif index is not None:
        raise UsageError(f"{source}: index= applies to landmark folders, not to a file")
    elif source.suffix.lower() == ".csv":
        dataset = _load_csv(source, use_cache, cache_dir)
    elif personal_dictionary.looks_like_dictionary(source):  # exported by the web demo: small, never cached
        dataset = personal_dictionary.load_dictionary_sequences(source)
    elif not source.exists():
        raise DataError(f"{source}: not found")
    else:
        raise DataError(f"{source}: expected a SPOTER .csv file, a personal dictionary .json (web demo export) "
                        f"or a folder of landmark files ({', '.join(formats.FILE_SUFFIXES)}) with an index")

    if split is not None:
        present = sorted(set(dataset.splits.tolist()) - {""})
        if split not in present:
            raise DataError(f"{source}: no samples in split {split!r} "
                            f"(splits present: {', '.join(present) if present else 'none'})")
        dataset = dataset.split(split)
    if label_names is not None:
        try:
            dataset = dataset.with_label_names(list(label_names))
        except ValueError as error:
            raise DataError(f"{source}: {error}") from None
    return dataset


def _load_csv(path: Path, use_cache: bool, cache_dir) -> SequenceSet:
    names_file = path.parent / LABEL_NAMES_FILE
    if not use_cache:
        return read_spoter_csv(path)
    if not path.is_file():
        raise DataError(f"{path}: not found")
    key = {"source": str(path.resolve()), "label_names_file": str(names_file.resolve())}
    dataset, _ = dataset_cache.load_or_build(
        "spoter_csv", key, lambda: [path.resolve(), names_file.resolve()],
        lambda: (read_spoter_csv(path), {}), cache_dir)
    return dataset


def find_index(folder: Path) -> Path:
    """The default index of a landmark folder."""
    for name in INDEX_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {' or '.join(INDEX_NAMES)} found; pass the index explicitly")


def _in_split(skipped: list, folder: Path, index, split: str | None) -> list[tuple[str, str]]:
    """The skipped files whose index entry is in ``split`` (all of them when ``split`` is None)."""
    if split is None:
        return [tuple(item) for item in skipped]
    splits = {e.video_id: e.split for e in read_index(Path(index) if index is not None else find_index(folder))}
    return [tuple(item) for item in skipped if splits.get(item[0], split) == split]


def _load_folder(folder: Path, index, use_cache: bool, cache_dir, progress: bool) -> tuple[SequenceSet, list]:
    """The folder's dataset and the ``[video_id, reason]`` pairs of the files that were skipped."""
    index = Path(index) if index is not None else find_index(folder)
    landmarks = folder / LANDMARKS_SUBDIR if (folder / LANDMARKS_SUBDIR).is_dir() else folder
    entries: list[IndexEntry] = []

    def list_files() -> list[Path]:
        entries.extend(read_index(index))
        named = dict.fromkeys(f.resolve() for e in entries for f in formats.source_files(landmark_file(landmarks, e)))
        return [index.resolve(), *named]

    def build() -> tuple[SequenceSet, dict]:
        dataset, report = read_landmark_folder(landmarks, entries or read_index(index), progress=progress)
        return dataset, {"skipped": [list(item) for item in report.skipped]}

    if not use_cache:
        list_files()
        dataset, extra = build()
        return dataset, extra["skipped"]
    key = {"source": str(folder.resolve()), "landmarks": str(landmarks.resolve()), "index": str(index.resolve())}
    dataset, extra = dataset_cache.load_or_build("landmark_folder", key, list_files, build, cache_dir)
    skipped = extra.get("skipped", [])
    if entries:  # freshly built: read_landmark_folder has already logged each skipped file
        return dataset, skipped
    for video_id, reason in skipped:  # from the cache: reported exactly as when the folder was read
        log.warning("skipped %s: %s", video_id, reason)
    return dataset, skipped
