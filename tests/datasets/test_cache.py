"""Dataset cache and load_sequence_set: warm equals cold, what invalidates an entry, damage repaired."""
import json
import logging
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from datasets import cache as dataset_cache
from datasets import layout, loading
from datasets.errors import DataError, UsageError
from datasets.loading import load_sequence_set
from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv

SHAPE = (layout.NUM_POINTS, layout.NUM_COORDS)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own default cache folder (never the user's)."""
    monkeypatch.setenv(dataset_cache.CACHE_DIR_ENV, str(tmp_path / "default-cache"))
    return tmp_path / "default-cache"


def make_set(lengths=(3, 4, 1, 2), seed=0, names=("hello", "thanks", "yes")) -> SequenceSet:
    rng = np.random.default_rng(seed)
    sequences = [rng.random((n, *SHAPE), dtype=np.float32) for n in lengths]
    return SequenceSet.from_sequences(
        sequences, np.arange(len(lengths)) % len(names), list(names), video_ids=[f"v{i}" for i in range(len(lengths))],
        signer_ids=[f"s{i % 2}" for i in range(len(lengths))], splits=[("train", "test")[i % 2] for i in range(len(lengths))])


def assert_same(a: SequenceSet, b: SequenceSet):
    for name, value in a.to_arrays().items():
        np.testing.assert_array_equal(value, b.to_arrays()[name], err_msg=name)
    assert a.label_names == b.label_names


class CountingReader:
    """Wraps a reader in loading.py to count how often the source is really parsed."""

    def __init__(self, monkeypatch, name):
        self.calls, self.inner = 0, getattr(loading, name)
        monkeypatch.setattr(loading, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "data" / "set.csv"
    write_spoter_csv(make_set(), path)
    return path


@pytest.fixture
def folder(tmp_path):
    """A real-dev style folder: landmarks/<id>.npy, index.json with splits."""
    root = tmp_path / "folder"
    (root / "landmarks").mkdir(parents=True)
    rng = np.random.default_rng(5)
    instances = [("a1", "hello", "train"), ("a2", "hello", "test"), ("b1", "yes", "train"), ("b2", "yes", "test")]
    for k, (video_id, _, _) in enumerate(instances):
        np.save(root / "landmarks" / f"{video_id}.npy", rng.random((2 + k, layout.RAW_FEATURES), dtype=np.float32))
    index = [{"gloss": g, "instances": [{"video_id": v, "signer_id": 1, "split": s} for v, gg, s in instances if gg == g]}
             for g in ("hello", "yes")]
    (root / "index.json").write_text(json.dumps(index))
    return root


def entries(cache_dir):
    return sorted(p for p in cache_dir.iterdir()) if cache_dir.exists() else []


# ----------------------------------------------------------------- CSV entries
def test_warm_load_equals_cold_load_and_is_memory_mapped(csv_file, tmp_path, monkeypatch):
    reader = CountingReader(monkeypatch, "read_spoter_csv")
    cold = load_sequence_set(csv_file, cache=False)
    first = load_sequence_set(csv_file, cache=tmp_path / "cache")
    warm = load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert reader.calls == 2  # uncached + filling; the third load came from the cache
    assert_same(warm, cold)
    assert_same(first, cold)
    folder, = entries(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["frames.npy", "meta.json", "meta.npz"]
    # read-only, but usable for everything a data loader does
    assert not warm.frames.flags.writeable
    with pytest.raises(ValueError):
        warm.frames[0, 0, 0] = 1.0
    assert np.isclose(warm.frames.mean(), cold.frames.mean())
    assert_same(warm.subset([3, 1]), cold.subset([3, 1]))
    np.testing.assert_array_equal(warm.sequence(1) * 2, cold.sequence(1) * 2)


def test_default_cache_folder_comes_from_the_environment(csv_file, private_cache):
    assert dataset_cache.default_cache_dir() == private_cache
    load_sequence_set(csv_file)
    assert len(entries(private_cache)) == 1
    assert not (csv_file.parent / "cache").exists() and sorted(p.name for p in csv_file.parent.iterdir()) == ["set.csv"]


def test_no_cache_writes_nothing(csv_file, private_cache):
    load_sequence_set(csv_file, cache=False)
    assert not private_cache.exists()


def test_touch_keeps_the_entry(csv_file, tmp_path, monkeypatch):
    reader = CountingReader(monkeypatch, "read_spoter_csv")
    hashed = []
    monkeypatch.setattr(dataset_cache, "file_sha256", lambda path, real=dataset_cache.file_sha256: (
        hashed.append(path), real(path))[1])
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    hashed.clear()
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert hashed == []  # unchanged size and mtime: trusted without reading the file
    stat = csv_file.stat()
    os.utime(csv_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert reader.calls == 1 and hashed == [csv_file.resolve()]
    # the new mtime is recorded, so the next load does not hash the file again
    meta = json.loads((entries(tmp_path / "cache")[0] / "meta.json").read_text())
    assert meta["files"][0]["mtime_ns"] == stat.st_mtime_ns + 5_000_000_000
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert hashed == [csv_file.resolve()]


def test_content_change_of_the_same_size_rebuilds(csv_file, tmp_path, monkeypatch):
    reader = CountingReader(monkeypatch, "read_spoter_csv")
    before = load_sequence_set(csv_file, cache=tmp_path / "cache")
    data = csv_file.read_bytes()
    first_digit = data.index(b"[") + 1
    while not data[first_digit:first_digit + 1].isdigit() or data[first_digit:first_digit + 1] == b"9":
        first_digit += 1
    csv_file.write_bytes(data[:first_digit] + b"9" + data[first_digit + 1:])
    after = load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert reader.calls == 2
    assert not np.array_equal(after.frames, before.frames)
    assert_same(after, load_sequence_set(csv_file, cache=False))
    assert len(entries(tmp_path / "cache")) == 1  # replaced, not added


def test_new_label_names_file_rebuilds(csv_file, tmp_path):
    rows = csv_file.read_text().splitlines()
    header = rows[0].split(",")
    assert header[1] == "label_name"
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    # a label file beside the CSV only matters without a label_name column; a new one still invalidates
    (csv_file.parent / "id_to_label.json").write_text(json.dumps({"0": "x"}))
    meta_before = json.loads((entries(tmp_path / "cache")[0] / "meta.json").read_text())
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    meta_after = json.loads((entries(tmp_path / "cache")[0] / "meta.json").read_text())
    assert meta_before["content_sha256"] != meta_after["content_sha256"]


@pytest.mark.parametrize("damage", ["truncate frames", "garbage meta.json", "missing meta.npz", "wrong sizes",
                                    "empty folder"])
def test_corrupt_entry_is_rebuilt(csv_file, tmp_path, damage, caplog):
    cold = load_sequence_set(csv_file, cache=False)
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    folder, = entries(tmp_path / "cache")
    if damage == "truncate frames":
        data = (folder / "frames.npy").read_bytes()
        (folder / "frames.npy").write_bytes(data[: len(data) // 2])
    elif damage == "garbage meta.json":
        (folder / "meta.json").write_text("{not json")
    elif damage == "missing meta.npz":
        (folder / "meta.npz").unlink()
    elif damage == "wrong sizes":
        np.save(folder / "frames.npy", np.zeros((3, *SHAPE), np.float32))
    else:
        for path in folder.iterdir():
            path.unlink()
    with caplog.at_level(logging.WARNING):
        repaired = load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert_same(repaired, cold)
    assert "rebuilding" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert_same(load_sequence_set(csv_file, cache=tmp_path / "cache"), cold)
    assert caplog.text == ""  # the rebuilt entry is healthy
    assert len(entries(tmp_path / "cache")) == 1


def test_reader_change_invalidates(csv_file, tmp_path, monkeypatch):
    reader = CountingReader(monkeypatch, "read_spoter_csv")
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    monkeypatch.setattr(dataset_cache, "reader_digest", lambda: "another reader")
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    load_sequence_set(csv_file, cache=tmp_path / "cache")
    assert reader.calls == 2


def test_unwritable_cache_folder_is_not_fatal(csv_file, tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        dataset = load_sequence_set(csv_file, cache=blocker)
    assert_same(dataset, load_sequence_set(csv_file, cache=False))
    assert "could not write the dataset cache" in caplog.text


def test_concurrent_writers_leave_one_valid_entry(csv_file, tmp_path):
    cold = load_sequence_set(csv_file, cache=False)
    results, errors = [], []

    def load():
        try:
            results.append(load_sequence_set(csv_file, cache=tmp_path / "cache"))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 4
    for result in results:
        assert_same(result, cold)
    assert [p.name.startswith(".") for p in (tmp_path / "cache").iterdir()] == [False]  # no temporaries left
    assert_same(load_sequence_set(csv_file, cache=tmp_path / "cache"), cold)


def test_concurrent_processes_share_one_entry(csv_file, tmp_path, repo_root):
    """Two processes (e.g. two training ranks) filling the same entry at the same time."""
    code = ("import sys; from datasets.loading import load_sequence_set; "
            "d = load_sequence_set(sys.argv[1], cache=sys.argv[2]); print(len(d), float(d.frames.sum()))")
    command = [sys.executable, "-c", code, str(csv_file), str(tmp_path / "cache")]
    workers = [subprocess.Popen(command, cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    cold = load_sequence_set(csv_file, cache=False)
    assert {out.split()[0] for out, _ in outputs} == {str(len(cold))}
    assert [p.name.startswith(".") for p in (tmp_path / "cache").iterdir()] == [False]
    assert_same(load_sequence_set(csv_file, cache=tmp_path / "cache"), cold)


def test_replacing_an_entry_while_it_is_mapped(csv_file, tmp_path):
    """A reader holding the old entry keeps valid data when a writer replaces it."""
    held = load_sequence_set(csv_file, cache=tmp_path / "cache")
    expected = np.array(held.frames)
    folder, = entries(tmp_path / "cache")
    dataset_cache._write_entry(folder, make_set(seed=9), json.loads((folder / "meta.json").read_text()))
    np.testing.assert_array_equal(held.frames, expected)


# -------------------------------------------------------------- folder entries
def test_folder_warm_load_equals_cold_load(folder, tmp_path, monkeypatch):
    reader = CountingReader(monkeypatch, "read_landmark_folder")
    cold = load_sequence_set(folder, cache=False)
    load_sequence_set(folder, cache=tmp_path / "cache")
    warm = load_sequence_set(folder, cache=tmp_path / "cache")
    assert reader.calls == 2
    assert_same(warm, cold)
    assert len(warm) == 4 and warm.label_names == ["hello", "yes"]


def test_folder_touch_keeps_and_edit_rebuilds(folder, tmp_path, monkeypatch):
    reader = CountingReader(monkeypatch, "read_landmark_folder")
    load_sequence_set(folder, cache=tmp_path / "cache")
    target = folder / "landmarks" / "b1.npy"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    os.utime(folder / "index.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_sequence_set(folder, cache=tmp_path / "cache")
    assert reader.calls == 1
    changed = np.load(target)
    changed[0, 0] += 0.5
    np.save(target, changed)
    after = load_sequence_set(folder, cache=tmp_path / "cache")
    assert reader.calls == 2
    i = list(after.video_ids).index("b1")
    np.testing.assert_array_equal(after.sequence(i), layout.raw_to_spoter(changed))


def test_folder_index_edit_rebuilds(folder, tmp_path):
    load_sequence_set(folder, cache=tmp_path / "cache")
    index = json.loads((folder / "index.json").read_text())
    index[0]["instances"].pop()
    (folder / "index.json").write_text(json.dumps(index))
    assert len(load_sequence_set(folder, cache=tmp_path / "cache")) == 3


def test_folder_missing_file_appearing_rebuilds_and_skips_are_reported_on_hits(folder, tmp_path, caplog):
    (folder / "landmarks" / "b2.npy").rename(tmp_path / "b2.npy")
    with caplog.at_level(logging.WARNING):
        first = load_sequence_set(folder, cache=tmp_path / "cache")
    assert len(first) == 3 and "b2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = load_sequence_set(folder, cache=tmp_path / "cache")
    assert len(again) == 3 and "b2" in caplog.text and "skipped" in caplog.text
    (tmp_path / "b2.npy").rename(folder / "landmarks" / "b2.npy")
    assert len(load_sequence_set(folder, cache=tmp_path / "cache")) == 4


# ----------------------------------------------------------- load_sequence_set
def test_split_and_vocabulary(folder, csv_file):
    train = load_sequence_set(folder, split="train")
    test = load_sequence_set(folder, split="test", label_names=["yes", "other", "hello"])
    assert train.video_ids.tolist() == ["a1", "b1"]
    assert test.label_names == ["yes", "other", "hello"]
    assert [test.label_names[l] for l in test.labels] == ["hello", "yes"]
    assert load_sequence_set(csv_file, split="test").video_ids.tolist() == ["v1", "v3"]
    with pytest.raises(DataError, match=r"split 'val' \(splits present: test, train\)"):
        load_sequence_set(folder, split="val")
    with pytest.raises(DataError, match="yes"):
        load_sequence_set(folder, label_names=["hello"])


def test_index_argument_and_default_index_order(folder):
    lines = ["video_id,gloss,signer_id,split", "a1,hi,3,train", "b2,yes,4,test"]
    (folder / "index.csv").write_text("\n".join(lines) + "\n")
    assert len(load_sequence_set(folder)) == 4  # index.json comes first
    other = load_sequence_set(folder, index=folder / "index.csv")
    assert other.label_names == ["hi", "yes"] and other.signer_ids.tolist() == ["3", "4"]
    (folder / "index.json").unlink()
    assert len(load_sequence_set(folder)) == 2


def test_flat_folder_without_landmarks_subfolder(folder):
    for path in (folder / "landmarks").iterdir():
        path.rename(folder / path.name)
    (folder / "landmarks").rmdir()
    assert len(load_sequence_set(folder, cache=False)) == 4


def test_bad_sources(tmp_path, csv_file):
    with pytest.raises(DataError, match="not found"):
        load_sequence_set(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="not found"):
        load_sequence_set(tmp_path / "absent")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DataError, match=r"expected a SPOTER \.csv file, a personal dictionary \.json .* or a folder of landmark files"):
        load_sequence_set(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no index.json or index.csv"):
        load_sequence_set(tmp_path / "empty")
    with pytest.raises(UsageError, match="index="):
        load_sequence_set(csv_file, index="index.json")
