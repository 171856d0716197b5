"""SPOTER CSV → landmark folder: the inverse point mapping, names, splits and refusals."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from datasets import layout
from datasets.errors import DataError, UsageError
from datasets.imports import import_spoter_csvs, split_from_file_name, spoter_to_raw
from datasets.landmark_folder import load_raw_landmarks, read_index, read_landmark_folder
from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv


def spoter_sequences(lengths, seed=0):
    """SPOTER frames made from raw ones, so the neck is the shoulders' midpoint as in our files."""
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        raw = rng.random((n, layout.RAW_FEATURES), dtype=np.float32)
        raw[::2, layout.RAW_RIGHT_HAND_OFFSET * 2:] = 0  # right hand lost
        out.append(layout.raw_to_spoter(raw))
    return out


def test_spoter_to_raw_inverts_raw_to_spoter():
    spoter = spoter_sequences([6])[0]
    raw = spoter_to_raw(spoter)
    assert raw.shape == (6, layout.RAW_FEATURES) and raw.dtype == np.float32
    np.testing.assert_array_equal(layout.raw_to_spoter(raw), spoter)
    # raw points SPOTER has no use for are "not detected"
    used = np.zeros(layout.NUM_RAW_POINTS, bool)
    used[layout.RAW_SOURCE_INDEX[layout.RAW_SOURCE_INDEX >= 0]] = True
    assert np.all(raw.reshape(6, layout.NUM_RAW_POINTS, 2)[:, ~used] == 0)
    assert used.sum() == layout.NUM_POINTS - 1  # all but the neck
    with pytest.raises(ValueError, match="54"):
        spoter_to_raw(np.zeros((3, 50, 2)))


@pytest.mark.parametrize("name, split", [
    ("WLASL100_train_25fps.csv", "train"), ("WLASL100_val_25fps.csv", "val"), ("lsa64-test.csv", "test"),
    ("validation.csv", "val"), ("trainset.csv", ""), ("wlasl100.csv", ""),
])
def test_split_from_file_name(tmp_path, name, split):
    assert split_from_file_name(tmp_path / name) == split


def published_style_csv(path, sequences, labels, neck_shift=0.0):
    """Labels only (no names, ids, signers) and extra columns, as the published files."""
    header = ["labels", "video_fps", *layout.COLUMN_NAMES]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for label, seq in zip(labels, sequences):
            seq = seq.copy()
            seq[:, layout.NECK] += neck_shift
            columns = seq.reshape(len(seq), -1).T
            writer.writerow([label, "25.0", *(str(col.tolist()) for col in columns)])
    return path


def test_published_files_get_generated_ids_and_splits(tmp_path):
    sequences = spoter_sequences([3, 4, 5, 6])
    train = published_style_csv(tmp_path / "WLASL100_train_25fps.csv", sequences[:3], [0, 1, 1])
    val = published_style_csv(tmp_path / "WLASL100_val_25fps.csv", sequences[3:], [1])
    (tmp_path / "id_to_label.json").write_text(json.dumps({"0": "book", "1": "drink"}))
    report = import_spoter_csvs([train, val], tmp_path / "out")
    assert (report.samples, report.frames, report.neck_changed_frames) == (4, 18, 0)
    entries = read_index(tmp_path / "out" / "index.csv")
    assert [(e.video_id, e.gloss, e.split) for e in entries] == [
        ("WLASL100_train_25fps_0", "book", "train"), ("WLASL100_train_25fps_1", "drink", "train"),
        ("WLASL100_train_25fps_2", "drink", "train"), ("WLASL100_val_25fps_0", "drink", "val")]
    dataset, skipped = read_landmark_folder(tmp_path / "out", entries)
    assert skipped.skipped == []
    for i, seq in enumerate(sequences):
        np.testing.assert_array_equal(dataset.sequence(i), seq.astype(np.float32))


def test_a_neck_of_its_own_is_counted(tmp_path):
    sequences = spoter_sequences([3, 4])
    path = published_style_csv(tmp_path / "data.csv", sequences, [0, 0], neck_shift=0.01)
    report = import_spoter_csvs([path], tmp_path / "out")
    assert report.neck_changed_frames == 7
    raw = load_raw_landmarks(tmp_path / "out" / "data_0.npy")
    # everything but the neck survives
    rebuilt = layout.raw_to_spoter(raw)
    keep = np.arange(layout.NUM_POINTS) != layout.NECK
    np.testing.assert_array_equal(rebuilt[:, keep], sequences[0][:, keep])


def write_set(path, video_ids):
    sequences = spoter_sequences([2] * len(video_ids))
    write_spoter_csv(SequenceSet.from_sequences(sequences, [0] * len(video_ids), ["a"], video_ids=video_ids), path)
    return path


def test_repeated_and_unsafe_video_ids_are_refused_before_writing(tmp_path):
    first, second = write_set(tmp_path / "a.csv", ["v1", "v2"]), write_set(tmp_path / "b.csv", ["v3", "v1"])
    with pytest.raises(DataError, match=r"b\.csv: row 3: video_id 'v1' already used by .*a\.csv: row 2"):
        import_spoter_csvs([first, second], tmp_path / "out")
    unsafe = write_set(tmp_path / "c.csv", ["ok", "../escape"])
    with pytest.raises(DataError, match="not a plain file name"):
        import_spoter_csvs([unsafe], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_input(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        import_spoter_csvs([tmp_path / "none.csv"], tmp_path / "out")
    with pytest.raises(UsageError, match="no SPOTER CSV"):
        import_spoter_csvs([], tmp_path / "out")
