"""``create_dataset``: index → SPOTER train/val CSVs, splits, class selection, trimming, bad files."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from datasets import layout
from datasets.creation import create_dataset, index_targets, signer_split, stratified_split
from datasets.errors import DataError, UsageError
from datasets.landmark_folder import load_raw_landmarks, read_index, read_landmark_folder
from datasets.spoter_csv import read_spoter_csv

# gloss -> number of samples; signers s0..s4 take turns. "zeta" and "alpha" tie on purpose.
GLOSS_SIZES = {"yes": 9, "hello": 8, "thanks": 7, "zeta": 6, "alpha": 6, "more": 4, "one": 1}
SIGNERS = ("s0", "s1", "s2", "s3", "s4")


def raw_sequence(num_frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.random((num_frames, layout.RAW_FEATURES), dtype=np.float32)
    raw[1::3, layout.RAW_LEFT_HAND_OFFSET * 2: layout.RAW_RIGHT_HAND_OFFSET * 2] = 0  # left hand lost
    return raw


def make_instances() -> list[dict]:
    instances, k = [], 0
    for gloss, size in GLOSS_SIZES.items():
        for j in range(size):
            instances.append({"video_id": f"{gloss}_{j:02d}", "gloss": gloss, "signer_id": SIGNERS[k % len(SIGNERS)],
                              "split": "test" if j % 4 == 3 else "train", "frame_start": 1, "frame_end": -1})
            k += 1
    return instances


def write_json_index(path: Path, instances: list[dict]) -> Path:
    glosses: dict[str, list] = {}
    for inst in instances:
        glosses.setdefault(inst["gloss"], []).append({k: v for k, v in inst.items() if k != "gloss"})
    path.write_text(json.dumps([{"gloss": g, "instances": i} for g, i in glosses.items()]))
    return path


def write_csv_index(path: Path, instances: list[dict], columns=("video_id", "gloss", "signer_id", "split")) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([inst[c] for c in columns] for inst in instances)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """``landmarks/<id>.npy`` for every instance plus ``index.json``."""
    (tmp_path / "landmarks").mkdir()
    for n, inst in enumerate(make_instances()):
        np.save(tmp_path / "landmarks" / f"{inst['video_id']}.npy", raw_sequence(5 + n % 7, seed=n))
    write_json_index(tmp_path / "index.json", make_instances())
    return tmp_path


def run(folder: Path, out: Path, index: Path | None = None, **options):
    return create_dataset(folder / "landmarks", index or folder / "index.json", out, name="tiny", **options)


def load(out: Path):
    return read_spoter_csv(out / "tiny_train.csv"), read_spoter_csv(out / "tiny_val.csv")


def gloss_of(dataset, i: int) -> str:
    return dataset.label_names[dataset.labels[i]]


# --------------------------------------------------------------------------- outputs
def test_index_split_labels_and_round_trip(folder, tmp_path):
    report = run(folder, tmp_path / "out")
    train, val = load(tmp_path / "out")
    instances = make_instances()
    expected_val = {i["video_id"] for i in instances if i["split"] == "test"}
    assert set(val.video_ids.tolist()) == expected_val
    assert set(train.video_ids.tolist()) == {i["video_id"] for i in instances} - expected_val
    assert (report.train_samples, report.val_samples) == (len(train), len(val))
    assert set(train.splits.tolist()) == {"train"} and set(val.splits.tolist()) == {"val"}

    # label ids = sorted glosses, the same in id_to_label.json and in both files
    mapping = json.loads((tmp_path / "out" / "id_to_label.json").read_text())
    assert mapping == {str(i): g for i, g in enumerate(sorted(GLOSS_SIZES))}
    for dataset in (train, val):
        for i in range(len(dataset)):
            assert mapping[str(dataset.labels[i])] == gloss_of(dataset, i) == dataset.video_ids[i].rsplit("_", 1)[0]

    # every sample is the folder's file, mapped to SPOTER points, bit for bit
    signer = {i["video_id"]: i["signer_id"] for i in instances}
    for dataset in (train, val):
        for i, video_id in enumerate(dataset.video_ids.tolist()):
            raw = load_raw_landmarks(folder / "landmarks" / f"{video_id}.npy")
            np.testing.assert_array_equal(dataset.sequence(i), layout.raw_to_spoter(raw))
            assert dataset.signer_ids[i] == signer[video_id]
    # rows sorted by (label, video id)
    keys = [(int(train.labels[i]), train.video_ids[i]) for i in range(len(train))]
    assert keys == sorted(keys)


def test_wlasl_style_index_keeps_val_and_test_apart(folder, tmp_path):
    """train/val/test in the index -> three files: the checkpoint is chosen on val, reported on test."""
    instances = make_instances()
    for n, inst in enumerate(instances):
        if inst["split"] == "train" and n % 5 == 0:
            inst["split"] = "val"
    report = run(folder, tmp_path / "out", index=write_json_index(tmp_path / "wlasl.json", instances))
    train, val = load(tmp_path / "out")
    test = read_spoter_csv(tmp_path / "out" / "tiny_test.csv")
    for dataset, split in ((train, "train"), (val, "val"), (test, "test")):
        assert set(dataset.video_ids.tolist()) == {i["video_id"] for i in instances if i["split"] == split}
        assert set(dataset.splits.tolist()) == {split}
        assert [sorted(GLOSS_SIZES)[label] for label in dataset.labels] == [v.rsplit("_", 1)[0] for v in dataset.video_ids]
    assert report.test_file == str(tmp_path / "out" / "tiny_test.csv")
    assert (report.train_samples, report.val_samples, report.test_samples) == (len(train), len(val), len(test))
    saved = json.loads((tmp_path / "out" / "create_report.json").read_text())
    assert saved["test_samples"] == len(test) and saved["test_file"] == report.test_file
    assert saved["val_share"] + saved["test_share"] == pytest.approx((len(val) + len(test)) / len(instances), abs=1e-5)


def test_index_with_one_held_out_split_writes_no_test_file(folder, tmp_path):
    """train/test only (or train/val only): the held-out split is the val file, as before."""
    report = run(folder, tmp_path / "out")
    assert report.test_file == "" and report.test_samples == 0 and report.val_samples > 0
    assert not (tmp_path / "out" / "tiny_test.csv").exists()


@pytest.mark.parametrize("splits, expected", [
    (["train", "val", "test"], {"train": "train", "val": "val", "test": "test"}),
    (["Train", "validation", "TEST", "x"], {"Train": "train", "validation": "val", "TEST": "test"}),
    (["train", "dev", "test"], {"train": "train", "dev": "val", "test": "test"}),
    (["train", "test"], {"train": "train", "test": "val"}),
    (["train", "val"], {"train": "train", "val": "val"}),
])
def test_index_targets(splits, expected):
    assert index_targets(splits) == expected


def test_csv_index_gives_the_same_files(folder, tmp_path):
    run(folder, tmp_path / "from_json")
    run(folder, tmp_path / "from_csv", index=write_csv_index(tmp_path / "index.csv", make_instances()[::-1]))
    for name in ("tiny_train.csv", "tiny_val.csv", "id_to_label.json"):
        assert (tmp_path / "from_json" / name).read_bytes() == (tmp_path / "from_csv" / name).read_bytes()


def test_other_split_names_are_reported_and_left_out(folder, tmp_path):
    instances = make_instances()
    instances[0]["split"], instances[1]["split"], instances[2]["split"] = "holdout", "", "val"
    report = run(folder, tmp_path / "out", index=write_json_index(tmp_path / "odd.json", instances))
    train, val = load(tmp_path / "out")
    assert report.other_splits == {"holdout": 1, "": 1}
    assert instances[0]["video_id"] not in set(train.video_ids) | set(val.video_ids)
    assert instances[2]["video_id"] in set(val.video_ids)
    saved = json.loads((tmp_path / "out" / "create_report.json").read_text())
    assert saved["other_splits"] == {"holdout": 1, "": 1}


def test_index_without_splits_needs_a_new_split(folder, tmp_path):
    index = write_csv_index(tmp_path / "index.csv", make_instances(), columns=("video_id", "gloss", "signer_id"))
    with pytest.raises(UsageError, match="--create-new-split"):
        run(folder, tmp_path / "out", index=index)
    report = run(folder, tmp_path / "out", index=index, create_new_split=True)
    assert report.val_samples > 0 and report.other_splits == {}


def test_num_classes_keeps_the_most_frequent_ties_broken_by_name(folder, tmp_path):
    report = run(folder, tmp_path / "out", num_classes=4)
    # yes 9, hello 8, thanks 7, then alpha and zeta tie at 6: alpha wins by name
    assert report.label_names == ["alpha", "hello", "thanks", "yes"]
    assert report.dropped_glosses == ["more", "one", "zeta"] and report.dropped_samples == 4 + 1 + 6
    train, val = load(tmp_path / "out")
    assert {gloss_of(train, i) for i in range(len(train))} == set(report.label_names)
    assert len(train) + len(val) == 9 + 8 + 7 + 6


def test_single_sample_gloss_is_reported(folder, tmp_path):
    report = run(folder, tmp_path / "out")
    assert report.single_sample_glosses == ["one"]
    assert json.loads((tmp_path / "out" / "create_report.json").read_text())["single_sample_glosses"] == ["one"]


def test_outputs_leave_no_temporary_files(folder, tmp_path):
    run(folder, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "create_report.json", "id_to_label.json", "tiny_train.csv", "tiny_val.csv"]


# ----------------------------------------------------------------------------- splits
def test_stratified_split_per_gloss_and_seeded(folder, tmp_path):
    report = run(folder, tmp_path / "a", create_new_split=True, split="stratified", test_size=0.25, seed=5)
    train, val = load(tmp_path / "a")
    val_counts = Counter(gloss_of(val, i) for i in range(len(val)))
    for gloss, n in GLOSS_SIZES.items():
        expected = 0 if n == 1 else min(max(int(np.floor(n * 0.25 + 0.5)), 1), n - 1)
        assert val_counts.get(gloss, 0) == expected, gloss
    assert not set(train.video_ids) & set(val.video_ids)
    assert report.split_method == "stratified"

    run(folder, tmp_path / "b", create_new_split=True, split="stratified", test_size=0.25, seed=5)
    assert (tmp_path / "a" / "tiny_val.csv").read_bytes() == (tmp_path / "b" / "tiny_val.csv").read_bytes()
    chosen = {seed: set(load_val_ids(folder, tmp_path / f"seed{seed}", seed)) for seed in range(4)}
    assert len({frozenset(v) for v in chosen.values()}) > 1  # the seed matters


def load_val_ids(folder, out, seed):
    run(folder, out, create_new_split=True, split="stratified", seed=seed)
    return read_spoter_csv(out / "tiny_val.csv").video_ids.tolist()


def test_stratified_split_of_a_gloss_does_not_depend_on_the_others():
    glosses = ["a"] * 10 + ["b"] * 10
    ids = [f"v{i}" for i in range(20)]
    both = stratified_split(glosses, ids, 0.3, seed=1)
    alone = stratified_split(glosses[:10], ids[:10], 0.3, seed=1)
    np.testing.assert_array_equal(both[:10], alone)
    assert both.sum() == 6


def test_signer_split_keeps_every_signer_on_one_side(folder, tmp_path):
    report = run(folder, tmp_path / "out", create_new_split=True, split="signer", test_size=0.2, seed=0)
    train, val = load(tmp_path / "out")
    assert set(train.signer_ids.tolist()).isdisjoint(val.signer_ids.tolist())
    assert set(val.signer_ids.tolist()) == set(report.val_signers)
    assert len(train) + len(val) == sum(GLOSS_SIZES.values())
    assert report.val_share == pytest.approx(0.2, abs=0.05)  # 41 samples, 8 or 9 per signer


def test_signer_split_is_close_to_the_test_size():
    rng = np.random.default_rng(0)
    signers = [f"p{k}" for k in rng.integers(0, 30, size=3000)]
    for test_size in (0.1, 0.2, 0.35):
        is_val, val_signers = signer_split(signers, test_size, seed=3)
        assert abs(is_val.mean() - test_size) < 0.02
        assert {s for s, v in zip(signers, is_val) if v} == set(val_signers)


def test_signer_split_needs_two_signers_and_every_signer_id(folder, tmp_path):
    with pytest.raises(UsageError, match="two signers"):
        signer_split(["a", "a", "a"], 0.2, seed=0)
    instances = make_instances()
    instances[4]["signer_id"] = ""
    index = write_csv_index(tmp_path / "index.csv", instances)
    with pytest.raises(DataError, match="signer_id"):
        run(folder, tmp_path / "out", index=index, create_new_split=True, split="signer")


# ------------------------------------------------------------------------- bad items
def add_bad_items(folder: Path) -> list[dict]:
    """Bad files for new glosses/signers and for existing ones; returns their index entries."""
    landmarks = folder / "landmarks"
    bad = {
        "missing_file": None,
        "random_bytes": b"\x00\x01garbage" * 10,
        "zero_frames": np.zeros((0, layout.RAW_FEATURES), np.float32),
        "wrong_shape": np.zeros((4, 99), np.float32),
        "has_nan": np.full((3, layout.RAW_FEATURES), np.nan, np.float32),
        "objects": np.array([{"a": 1}], dtype=object),
    }
    entries = []
    for k, (video_id, content) in enumerate(bad.items()):
        if isinstance(content, bytes):
            (landmarks / f"{video_id}.npy").write_bytes(content)
        elif content is not None:
            np.save(landmarks / f"{video_id}.npy", content, allow_pickle=content.dtype == object)
        gloss = ("newgloss", "zeta", "hello")[k % 3]  # a gloss only bad items have, and real ones
        signer = "newsigner" if k % 2 == 0 else "s1"
        entries.append({"video_id": video_id, "gloss": gloss, "signer_id": signer,
                        "split": "train" if k % 2 else "test", "frame_start": 1, "frame_end": -1})
    return entries


@pytest.mark.parametrize("options", [
    {}, {"num_classes": 4}, {"create_new_split": True, "split": "stratified", "seed": 2},
    {"create_new_split": True, "split": "signer", "seed": 1, "test_size": 0.3},
], ids=["index", "num_classes", "stratified", "signer"])
def test_bad_items_are_skipped_and_the_rest_is_byte_identical(folder, tmp_path, options):
    clean = run(folder, tmp_path / "clean", **options)
    bad_entries = add_bad_items(folder)
    instances = make_instances()
    mixed = instances[:10] + bad_entries[:3] + instances[10:] + bad_entries[3:]  # bad entries among the good
    report = run(folder, tmp_path / "dirty", index=write_json_index(tmp_path / "dirty.json", mixed), **options)
    for name in ("tiny_train.csv", "tiny_val.csv", "id_to_label.json"):
        assert (tmp_path / "clean" / name).read_bytes() == (tmp_path / "dirty" / name).read_bytes(), name
    assert sorted(v for v, _ in report.skipped) == sorted(e["video_id"] for e in bad_entries)
    reasons = dict(report.skipped)
    assert "not found" in reasons["missing_file"] and "zero frames" in reasons["zero_frames"]
    assert "shape" in reasons["wrong_shape"] and "NaN" in reasons["has_nan"] and "pickle" in reasons["objects"]
    saved = json.loads((tmp_path / "dirty" / "create_report.json").read_text())
    assert len(saved["skipped"]) == len(bad_entries) and clean.skipped == []
    assert saved["skipped"][0].keys() == {"video_id", "reason"}


def test_repeated_video_ids(folder, tmp_path):
    instances = make_instances()
    same = dict(instances[0])  # listed twice under the same gloss: kept once
    other = dict(instances[5], gloss="thanks")  # listed under two glosses: dropped
    index = write_csv_index(tmp_path / "index.csv", instances + [same, other])
    report = run(folder, tmp_path / "out", index=index)
    train, val = load(tmp_path / "out")
    ids = train.video_ids.tolist() + val.video_ids.tolist()
    assert ids.count(same["video_id"]) == 1 and other["video_id"] not in ids
    reasons = dict(report.skipped)
    assert "listed again" in reasons[same["video_id"]] and "several glosses" in reasons[other["video_id"]]


def test_path_traversal_video_id_is_refused(folder, tmp_path):
    (tmp_path / "secret.npy").write_bytes(b"")
    instances = make_instances() + [{"video_id": "../secret", "gloss": "yes", "signer_id": "s0", "split": "train",
                                     "frame_start": 1, "frame_end": -1}]
    with pytest.raises(DataError, match=r"video_id '\.\./secret' is not a plain file name"):
        run(folder, tmp_path / "out", index=write_json_index(tmp_path / "evil.json", instances))
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- trimming
def write_manifest(folder: Path, ranges: dict[str, tuple[int, int]]) -> None:
    with open(folder / "landmarks" / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "frames", "fps", "width", "height", "pose_share", "left_hand_share",
                         "right_hand_share", "seconds", "frame_start", "frame_end"])
        for video, (start, end) in ranges.items():
            writer.writerow([video, 5, 25, 640, 480, 1, 0.5, 0.5, 0.2, start, end])


def trimmed_index(tmp_path: Path) -> Path:
    instances = make_instances()
    for inst in instances[:3]:
        inst["frame_start"], inst["frame_end"] = 2, 4
    return write_json_index(tmp_path / "trim.json", instances)


def lengths_by_id(out: Path) -> dict[str, int]:
    lengths = {}
    for dataset in load(out):
        lengths.update(zip(dataset.video_ids.tolist(), dataset.lengths.tolist()))
    return lengths


def test_frame_ranges_trim_the_whole_video_files(folder, tmp_path):
    index = trimmed_index(tmp_path)
    report = run(folder, tmp_path / "out", index=index)
    lengths = lengths_by_id(tmp_path / "out")
    for inst in make_instances()[:3]:
        raw = load_raw_landmarks(folder / "landmarks" / f"{inst['video_id']}.npy")
        assert lengths[inst["video_id"]] == 3
        train, val = load(tmp_path / "out")
        dataset = train if inst["video_id"] in set(train.video_ids) else val
        i = dataset.video_ids.tolist().index(inst["video_id"])
        np.testing.assert_array_equal(dataset.sequence(i), layout.raw_to_spoter(raw[1:4]))
    assert report.trimmed == 3 and report.pre_trimmed == 0

    report = run(folder, tmp_path / "untrimmed", index=index, trim=False)
    assert report.trimmed == 0
    assert lengths_by_id(tmp_path / "untrimmed")[make_instances()[0]["video_id"]] == 5


def test_files_extract_already_trimmed_are_not_trimmed_again(folder, tmp_path):
    ids = [inst["video_id"] for inst in make_instances()[:3]]
    # extract --index trimmed the first two (its manifest says so); the third was extracted whole
    write_manifest(folder, {ids[0]: (2, 4), ids[1]: (2, 4), ids[2]: (1, -1)})
    report = run(folder, tmp_path / "out", index=trimmed_index(tmp_path))
    lengths = lengths_by_id(tmp_path / "out")
    whole = {v: len(load_raw_landmarks(folder / "landmarks" / f"{v}.npy")) for v in ids}
    assert [lengths[v] for v in ids] == [whole[ids[0]], whole[ids[1]], 3]
    assert (report.pre_trimmed, report.trimmed) == (2, 1)


def test_a_manifest_range_that_disagrees_with_the_index_is_skipped(folder, tmp_path):
    ids = [inst["video_id"] for inst in make_instances()[:3]]
    write_manifest(folder, {ids[0]: (1, 3)})
    report = run(folder, tmp_path / "out", index=trimmed_index(tmp_path))
    assert [v for v, _ in report.skipped] == [ids[0]]
    assert "re-extract" in report.skipped[0][1]


# ---------------------------------------------------------------------------- usage
@pytest.mark.parametrize("options, message", [
    ({"test_size": 0.0}, "test_size"), ({"test_size": 1.0}, "test_size"), ({"num_classes": 0}, "num_classes"),
    ({"split": "random"}, "split"), ({"seed": -1}, "seed"),
])
def test_bad_arguments(folder, tmp_path, options, message):
    with pytest.raises(UsageError, match=message):
        run(folder, tmp_path / "out", **options)


def test_missing_folder_and_index(folder, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        create_dataset(tmp_path / "nowhere", folder / "index.json", tmp_path / "out")
    with pytest.raises(UsageError, match="does not exist"):
        create_dataset(folder / "landmarks", tmp_path / "missing.json", tmp_path / "out")


def test_index_defaults_to_the_folders_own(folder, tmp_path):
    create_dataset(folder, None, tmp_path / "a", name="tiny")
    run(folder, tmp_path / "b")
    assert (tmp_path / "a" / "tiny_train.csv").read_bytes() == (tmp_path / "b" / "tiny_train.csv").read_bytes()


# --------------------------------------------------------------------------- real data
REAL_DEV_SPLIT = {"train": 713, "test": 187}


def test_real_dev_reproduces_its_split_and_glosses(real_dev_dir, tmp_path):
    report = create_dataset(real_dev_dir / "landmarks", real_dev_dir / "index.json", tmp_path, name="real")
    assert (report.train_samples, report.val_samples) == (REAL_DEV_SPLIT["train"], REAL_DEV_SPLIT["test"])
    assert report.num_classes == 41 and report.skipped == []
    train, val = read_spoter_csv(tmp_path / "real_train.csv"), read_spoter_csv(tmp_path / "real_val.csv")
    entries = {e.video_id: e for e in read_index(real_dev_dir / "index.json")}
    assert {entries[v].split for v in train.video_ids} == {"train"}
    assert {entries[v].split for v in val.video_ids} == {"test"}
    assert sorted({gloss_of(train, i) for i in range(len(train))}) == sorted({e.gloss for e in entries.values()})

    # the created files hold exactly the folder's sequences
    folder_set, _ = read_landmark_folder(real_dev_dir / "landmarks", real_dev_dir / "index.json")
    position = {v: i for i, v in enumerate(folder_set.video_ids.tolist())}
    for dataset in (train, val):
        for i, video_id in enumerate(dataset.video_ids.tolist()):
            j = position[video_id]
            np.testing.assert_array_equal(dataset.sequence(i), folder_set.sequence(j))
            assert gloss_of(dataset, i) == folder_set.label_names[folder_set.labels[j]]
            assert dataset.signer_ids[i] == folder_set.signer_ids[j]


def test_real_dev_signer_split(real_dev_dir, tmp_path):
    report = create_dataset(real_dev_dir / "landmarks", real_dev_dir / "index.json", tmp_path, name="real",
                            create_new_split=True, split="signer", test_size=0.2, seed=0)
    train, val = read_spoter_csv(tmp_path / "real_train.csv"), read_spoter_csv(tmp_path / "real_val.csv")
    assert len(train) + len(val) == 900
    assert set(train.signer_ids.tolist()).isdisjoint(val.signer_ids.tolist())
    assert 0.1 <= report.val_share <= 0.3


def test_real_dev_num_classes_keeps_the_most_frequent(real_dev_dir, tmp_path):
    counts = Counter(e.gloss for e in read_index(real_dev_dir / "index.json"))
    expected = sorted(sorted(counts, key=lambda g: (-counts[g], g))[:10])
    report = create_dataset(real_dev_dir / "landmarks", real_dev_dir / "index.json", tmp_path, name="real",
                            num_classes=10)
    assert report.label_names == expected
    assert min(counts[g] for g in expected) >= max(counts[g] for g in counts if g not in expected)
    assert report.train_samples + report.val_samples == sum(counts[g] for g in expected)
    assert json.loads((tmp_path / "id_to_label.json").read_text()) == {str(i): g for i, g in enumerate(expected)}
