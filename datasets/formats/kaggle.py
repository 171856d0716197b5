"""The Kaggle "Isolated Sign Language Recognition" (asl-signs) layout ↔ the raw layout.

Each clip is one parquet file in long form, one row per landmark and frame, with columns
``frame, row_id, type, landmark_index, x, y, z``; ``type`` is ``face`` (468 points),
``left_hand``, ``pose`` or ``right_hand`` (MediaPipe Holistic's own order within each), and
x, y are image-relative with NaN where nothing was detected. The set's ``train.csv``
(``path, participant_id, sequence_id, sign``) is read by
:func:`datasets.landmark_folder.read_index`: ``sequence_id`` becomes the video id, ``sign``
the gloss and ``participant_id`` the signer. The data has no fps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets import layout
from datasets.errors import DataError
from datasets.formats import Clip

COLUMNS = ("frame", "type", "landmark_index", "x", "y")
# type → (first raw point, number of points); face points are read past (the raw layout has none)
TYPE_POINTS = {"pose": (layout.RAW_POSE_OFFSET, layout.NUM_POSE),
               "left_hand": (layout.RAW_LEFT_HAND_OFFSET, layout.NUM_HAND),
               "right_hand": (layout.RAW_RIGHT_HAND_OFFSET, layout.NUM_HAND)}
KNOWN_TYPES = ("face", *TYPE_POINTS)
FACE_POINTS = 468
INDEX_COLUMNS = ("path", "participant_id", "sequence_id", "sign")


def read_parquet_clip(path: Path) -> Clip:
    """One Kaggle-layout parquet clip → raw ``(T, 150)``; frames in ``frame`` order, gaps kept out."""
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is in requirements.txt
        raise DataError("reading .parquet clips needs pyarrow (pip install -r requirements.txt)")
    try:
        available = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in COLUMNS if c in available])
    except Exception as error:  # pyarrow raises its own ArrowInvalid etc. on damaged files
        raise DataError(f"{path}: not a readable parquet file ({type(error).__name__}: {error})") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} of the Kaggle ISLR layout "
                        f"(have {', '.join(table.column_names) or 'none'})")
    if table.num_rows == 0:
        raise DataError(f"{path}: zero frames")
    try:  # the few distinct type names, and one small code per row (sorting strings is the slow part)
        encoded = pc.dictionary_encode(table.column("type").cast("string")).combine_chunks()
        names = [str(n) for n in encoded.dictionary.to_pylist()]
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        frame = table.column("frame").to_numpy().astype(np.int64)
        index = table.column("landmark_index").to_numpy().astype(np.int64)
        xy = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in ("x", "y")])
    except Exception as error:  # wrong column types: pyarrow/numpy cast errors
        raise DataError(f"{path}: type must be text, frame/landmark_index integers and x/y numbers "
                        f"({type(error).__name__}: {error})") from None
    unknown = sorted(set(names) - set(KNOWN_TYPES))
    if unknown:
        raise DataError(f"{path}: column type holds {', '.join(unknown)}; expected {', '.join(KNOWN_TYPES)}")
    frames, position = np.unique(frame, return_inverse=True)
    raw_point = np.full(table.num_rows, -1, dtype=np.int64)
    for kind, (offset, count) in (*TYPE_POINTS.items(), ("face", (None, FACE_POINTS))):
        if kind not in names:
            continue
        rows = codes == names.index(kind)
        bad = rows & ((index < 0) | (index >= count))
        if bad.any():
            raise DataError(f"{path}: type {kind} has landmark_index {int(index[bad][0])}, expected 0..{count - 1}")
        if offset is not None:
            raw_point[rows] = offset + index[rows]
    keep = (raw_point >= 0) & np.isfinite(xy).all(axis=1)  # NaN: not detected, stays 0
    points = np.zeros((len(frames), layout.NUM_RAW_POINTS, 2), np.float32)
    points[position[keep], raw_point[keep]] = xy[keep]
    return Clip(points.reshape(len(frames), layout.RAW_FEATURES))
