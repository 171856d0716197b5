"""Landmark folders: index files, single-file checks, and skipping bad files without losing good ones."""
import json
import logging

import numpy as np
import pytest

from datasets import layout
from datasets.errors import DataError
from datasets.landmark_folder import IndexEntry, load_raw_landmarks, read_index, read_landmark_folder

INSTANCES = [  # (video_id, gloss, signer, split)
    ("a1", "hello", "7", "train"), ("a2", "hello", "8", "test"),
    ("b1", "thanks", "7", "train"), ("c1", "yes", "9", "train"),
]


def raw_sequence(num_frames, seed):
    rng = np.random.default_rng(seed)
    raw = rng.random((num_frames, layout.RAW_FEATURES), dtype=np.float32)
    raw[::2, layout.RAW_LEFT_HAND_OFFSET * 2: layout.RAW_RIGHT_HAND_OFFSET * 2] = 0  # left hand lost
    return raw


def write_json_index(path, instances=INSTANCES, extra=None):
    glosses = {}
    for video_id, gloss, signer, split in instances:
        glosses.setdefault(gloss, []).append(
            {"video_id": video_id, "signer_id": int(signer), "split": split, "frame_start": 1, "frame_end": -1,
             **(extra or {}).get(video_id, {})})
    path.write_text(json.dumps([{"gloss": g, "instances": inst} for g, inst in glosses.items()]))
    return path


def write_csv_index(path, instances=INSTANCES, encoding="utf-8"):
    lines = ["video_id,gloss,signer_id,split"] + [",".join(i) for i in instances]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


@pytest.fixture
def folder(tmp_path):
    """Landmark files for every instance, plus both index forms."""
    (tmp_path / "landmarks").mkdir()
    raws = {}
    for k, (video_id, *_rest) in enumerate(INSTANCES):
        raws[video_id] = raw_sequence(3 + k, seed=k)
        np.save(tmp_path / "landmarks" / f"{video_id}.npy", raws[video_id])
    write_json_index(tmp_path / "index.json")
    write_csv_index(tmp_path / "index.csv")
    return tmp_path, raws


# ------------------------------------------------------------------------ index
def test_json_and_csv_indexes_give_the_same_entries(folder):
    root, _ = folder
    from_json, from_csv = read_index(root / "index.json"), read_index(root / "index.csv")
    key = lambda e: (e.video_id, e.gloss, e.signer_id, e.split, e.frame_start, e.frame_end)
    assert sorted(map(key, from_json)) == sorted(map(key, from_csv))
    assert sorted(map(key, from_csv)) == sorted((v, g, s, sp, 1, -1) for v, g, s, sp in INSTANCES)


def test_csv_index_with_byte_order_mark(tmp_path):
    entries = read_index(write_csv_index(tmp_path / "index.csv", encoding="utf-8-sig"))
    assert entries[0].video_id == "a1"


def test_frame_range_is_read_from_json(tmp_path):
    path = write_json_index(tmp_path / "index.json", extra={"b1": {"frame_start": 2, "frame_end": 3}})
    entry = next(e for e in read_index(path) if e.video_id == "b1")
    assert (entry.frame_start, entry.frame_end) == (2, 3)


@pytest.mark.parametrize("video_id", ["../../outside", "..", "sub/dir", "a\\b", ""])
def test_index_ids_that_leave_the_folder_are_refused(tmp_path, video_id):
    instances = INSTANCES + [(video_id, "no", "1", "train")]
    with pytest.raises(DataError, match="video_id"):
        read_index(write_csv_index(tmp_path / "index.csv", instances))
    with pytest.raises(DataError, match="video_id"):
        read_index(write_json_index(tmp_path / "index.json", instances))


@pytest.mark.parametrize("text, message", [
    ("video_id,signer_id\na,1\n", "missing column 'gloss'"),
    ("video_id,gloss\na,\n", "row 2, column gloss"),
    ("video_id,gloss,frame_start\na,hi,one\n", "row 2: frame_start"),
])
def test_bad_csv_index_is_named(tmp_path, text, message):
    (tmp_path / "index.csv").write_text(text)
    with pytest.raises(DataError, match=message) as raised:
        read_index(tmp_path / "index.csv")
    assert str(tmp_path / "index.csv") in str(raised.value)


@pytest.mark.parametrize("text, message", [
    ("{not json", "invalid JSON"), ('{"gloss": "a"}', "expected a list"),
    ('[{"gloss": "a", "instances": [{"split": "train"}]}]', "missing video_id"),
])
def test_bad_json_index_is_named(tmp_path, text, message):
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(DataError, match=message):
        read_index(tmp_path / "index.json")


# --------------------------------------------------------------- single files
def test_load_raw_landmarks_returns_float32(tmp_path):
    np.save(tmp_path / "ok.npy", raw_sequence(4, 0).astype(np.float64))
    raw = load_raw_landmarks(tmp_path / "ok.npy")
    assert raw.dtype == np.float32 and raw.shape == (4, layout.RAW_FEATURES)


def _truncated(path):
    np.save(path, raw_sequence(10, 0))
    path.write_bytes(path.read_bytes()[:-100])


def _with(array):
    return lambda path: np.save(path, array)


def _with_nan(value):
    raw = raw_sequence(5, 1)
    raw[2, 7] = value
    return _with(raw)


BAD_FILES = {
    "truncated": (_truncated, "not a valid .npy|not a readable"),
    "wrong shape": (_with(np.zeros((5, 99), np.float32)), r"expected shape \(frames, 150\), got \(5, 99\)"),
    "one dimension": (_with(np.zeros(150, np.float32)), "expected shape"),
    "NaN": (_with_nan(np.nan), "NaN or infinite"),
    "inf": (_with_nan(np.inf), "NaN or infinite"),
    "zero frames": (_with(np.zeros((0, 150), np.float32)), "zero frames"),
    "pickled objects": (lambda p: np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True), "pickle"),
    "strings": (_with(np.array(["a", "b"])), "expected numeric"),
    "text file": (lambda p: p.write_text("0.1,0.2\n"), "not a .npy file"),
    "npz archive": (lambda p: np.savez(open(p, "wb"), x=np.zeros((2, 150))), "not a .npy file"),
    "missing": (lambda p: None, "file not found"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_landmark_file_is_refused_with_its_reason(tmp_path, case):
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.npy"
    make(path)
    with pytest.raises(DataError, match=message) as raised:
        load_raw_landmarks(path)
    assert str(path) in str(raised.value)


# ------------------------------------------------------------------- folders
@pytest.mark.parametrize("index_name", ["index.json", "index.csv"])
def test_folder_loads_every_indexed_file(folder, index_name):
    root, raws = folder
    dataset, report = read_landmark_folder(root / "landmarks", root / index_name)
    assert report.loaded == 4 and report.skipped == []
    assert dataset.label_names == ["hello", "thanks", "yes"]
    by_id = {v: i for i, v in enumerate(dataset.video_ids)}
    for video_id, gloss, signer, split in INSTANCES:
        i = by_id[video_id]
        np.testing.assert_array_equal(dataset.sequence(i), layout.raw_to_spoter(raws[video_id]))
        assert (dataset.label_names[dataset.labels[i]], dataset.signer_ids[i], dataset.splits[i]) == (gloss, signer, split)


def test_bad_files_are_skipped_and_reported_while_good_ones_load_identically(folder, caplog):
    root, raws = folder
    clean, _ = read_landmark_folder(root / "landmarks", root / "index.json")
    extra = [("bad_shape", "hello", "1", "train"), ("bad_nan", "yes", "1", "train"), ("absent", "no", "1", "test")]
    np.save(root / "landmarks" / "bad_shape.npy", np.zeros((4, 99), np.float32))
    np.save(root / "landmarks" / "bad_nan.npy", np.full((4, 150), np.nan, np.float32))
    index = write_json_index(root / "mixed.json", INSTANCES[:2] + extra + INSTANCES[2:])
    with caplog.at_level(logging.WARNING):
        dataset, report = read_landmark_folder(root / "landmarks", index)
    assert report.loaded == 4
    assert [video_id for video_id, _ in report.skipped] == ["bad_shape", "bad_nan", "absent"]
    assert "99" in dict(report.skipped)["bad_shape"] and "NaN" in dict(report.skipped)["bad_nan"]
    assert all(video_id in caplog.text for video_id, _ in report.skipped)
    # the vocabulary comes from the index, so "no" exists even though its only file is missing
    assert dataset.label_names == ["hello", "no", "thanks", "yes"]
    good = dataset.with_label_names(clean.label_names)
    order = [list(good.video_ids).index(v) for v in clean.video_ids]
    for name, value in good.subset(order).to_arrays().items():
        np.testing.assert_array_equal(value, clean.to_arrays()[name], err_msg=name)


def test_frame_range_trims_and_an_empty_range_is_skipped(folder):
    root, raws = folder
    index = write_json_index(root / "ranged.json", extra={"c1": {"frame_start": 2, "frame_end": 4},
                                                          "b1": {"frame_start": 50, "frame_end": -1}})
    dataset, report = read_landmark_folder(root / "landmarks", index)
    i = list(dataset.video_ids).index("c1")
    np.testing.assert_array_equal(dataset.sequence(i), layout.raw_to_spoter(raws["c1"][1:4]))
    assert [v for v, _ in report.skipped] == ["b1"]


def test_split_and_vocabulary_filters(folder):
    root, _ = folder
    test, _ = read_landmark_folder(root / "landmarks", root / "index.csv", split="test")
    assert test.video_ids.tolist() == ["a2"]
    known, report = read_landmark_folder(root / "landmarks", root / "index.csv", label_names=["yes", "hello"])
    assert sorted(known.video_ids.tolist()) == ["a1", "a2", "c1"]
    assert [v for v, _ in report.skipped] == ["b1"]
    assert known.label_names == ["yes", "hello"]


def test_entries_can_be_passed_directly(folder):
    root, raws = folder
    dataset, _ = read_landmark_folder(root / "landmarks", [IndexEntry("b1", "thanks")])
    np.testing.assert_array_equal(dataset.frames, layout.raw_to_spoter(raws["b1"]))
