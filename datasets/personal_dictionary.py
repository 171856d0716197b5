"""Personal dictionaries: the signs a user enrolled in the web demo, exported as one JSON file.

The web page keeps each enrolled clip twice: its embedding (what recognition compares)
and its raw MediaPipe landmarks ``(T, 150)`` (so the clip can be embedded again by
another model, or evaluated here). Its export is the file read by this module::

    {"format": "spoter-personal-dictionary", "version": 1,
     "model_digest": "<weights fingerprint, as in gallery .npz files>",
     "metric": "euclidean" | "cosine", "embedding_dim": D,
     "signs": [{"gloss": ..., "video_id": ..., "signer_id": ...,
                "embedding": [D numbers], "landmarks": [[150 numbers], ...]}, ...]}

Two consumers read it: :meth:`evaluation.gallery.Gallery.load` uses the embeddings (a
gallery for ``predict.py``), :func:`datasets.loading.load_sequence_set` uses the
landmarks (a dataset for ``evaluate.py``). Both go through :func:`read_dictionary`, so
a file is validated once, the same way, and a bad file gives one line naming the file,
the sign and the problem.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.errors import DataError
from datasets.sequences import SequenceSet

FORMAT = "spoter-personal-dictionary"
VERSION = 1
METRICS = ("euclidean", "cosine")


@dataclass
class PersonalDictionary:
    """The validated content of a dictionary file, in file order."""

    model_digest: str
    metric: str
    embedding_dim: int
    glosses: list[str]
    video_ids: list[str]
    signer_ids: list[str]
    embeddings: np.ndarray      # (N, D) float32
    landmarks: list[np.ndarray]  # N raw clips (T, 150) float32

    def label_names(self) -> list[str]:
        """Distinct glosses in order of first appearance (the order the page ranks ties in)."""
        return list(dict.fromkeys(self.glosses))

    def labels(self) -> np.ndarray:
        position = {name: i for i, name in enumerate(self.label_names())}
        return np.asarray([position[g] for g in self.glosses], np.int64)

    def sequences(self) -> SequenceSet:
        """The clips as a dataset of SPOTER points (what every other dataset source gives)."""
        return SequenceSet.from_sequences([layout.raw_to_spoter(raw) for raw in self.landmarks], self.labels(),
                                          self.label_names(), self.video_ids, self.signer_ids)


def looks_like_dictionary(path: str | os.PathLike) -> bool:
    """True when ``path`` is a ``.json`` file whose top-level object says it is a personal dictionary.

    Only the opening bytes are read, so a large landmark JSON of another kind is not parsed twice.
    """
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(4096).decode("utf-8", "replace")
    return f'"{FORMAT}"' in head and head.lstrip().startswith("{")


def _text(value, where: str, name: str, required: bool) -> str:
    if value is None or value == "":
        if required:
            raise DataError(f"{where}: no {name}")
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: {name} must be a string, got {type(value).__name__}")
    return value


def _numbers(values, where: str, what: str, length: int | None) -> list:
    if not isinstance(values, list):
        raise DataError(f"{where}: {what} must be an array of numbers")
    if length is not None and len(values) != length:
        raise DataError(f"{where}: {what} has {len(values)} values, expected {length}")
    for k, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise DataError(f"{where}: {what} value {k} is not a finite number")
    return values


def _landmarks(rows, where: str) -> np.ndarray:
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{where}: landmarks must be a non-empty array of frames")
    for t, row in enumerate(rows):
        _numbers(row, where, f"landmarks frame {t}", layout.RAW_FEATURES)
    return np.asarray(rows, np.float32)


def _header(doc, path: Path) -> tuple[str, str, int, list]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f'{path}: not a personal dictionary (expected "format": "{FORMAT}")')
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(f"{path}: personal dictionary version must be a positive integer, got {version!r}")
    if version > VERSION:
        raise DataError(f"{path}: personal dictionary version {version} is newer than this code ({VERSION})")
    metric = doc.get("metric", "euclidean")
    if metric not in METRICS:
        raise DataError(f"{path}: unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    dim = doc.get("embedding_dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise DataError(f"{path}: embedding_dim must be a positive integer, got {dim!r}")
    signs = doc.get("signs")
    if not isinstance(signs, list):
        raise DataError(f"{path}: no signs array")
    return _text(doc.get("model_digest"), str(path), "model_digest", False), metric, dim, signs


def read_dictionary(path: str | os.PathLike) -> PersonalDictionary:
    """Read and validate a personal dictionary file; :class:`DataError` with one line otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a personal dictionary file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a personal dictionary (not UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    digest, metric, dim, signs = _header(doc, path)
    glosses, videos, signers, embeddings, clips = [], [], [], [], []
    for i, sign in enumerate(signs):
        where = f"{path}: sign {i}"
        if not isinstance(sign, dict):
            raise DataError(f"{where}: expected an object")
        gloss = _text(sign.get("gloss"), where, "gloss", True).strip()
        if not gloss:
            raise DataError(f"{where}: the gloss is blank")
        glosses.append(gloss)
        videos.append(_text(sign.get("video_id"), where, "video_id", False))
        signers.append(_text(sign.get("signer_id"), where, "signer_id", False))
        embeddings.append(_numbers(sign.get("embedding"), where, "embedding", dim))
        clips.append(_landmarks(sign.get("landmarks"), where))
    return PersonalDictionary(digest, metric, dim, glosses, videos, signers,
                              np.asarray(embeddings, np.float32).reshape(len(signs), dim), clips)


def load_dictionary_sequences(path: str | os.PathLike) -> SequenceSet:
    """The landmark clips of a dictionary file as a dataset (for :func:`datasets.loading.load_sequence_set`)."""
    return read_dictionary(path).sequences()
