"""The real landmark set (`<repo>/../shared/data/real-dev`) loads completely through the one entry point."""
import numpy as np
import pytest

from datasets import layout
from datasets.landmark_folder import load_raw_landmarks
from datasets.loading import load_sequence_set

NUM_SEQUENCES, NUM_GLOSSES, NUM_SIGNERS = 900, 41, 13
SPLIT_SIZES = {"train": 713, "test": 187}


@pytest.fixture(scope="module")
def real_dev(real_dev_dir, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("cache")
    cold = load_sequence_set(real_dev_dir, cache=cache_dir)
    return real_dev_dir, cold, cache_dir


def test_everything_loads(real_dev):
    _, dataset, _ = real_dev
    assert len(dataset) == NUM_SEQUENCES
    assert dataset.num_classes == NUM_GLOSSES and len(np.unique(dataset.labels)) == NUM_GLOSSES
    assert len(set(dataset.signer_ids.tolist())) == NUM_SIGNERS
    assert {s: int((dataset.splits == s).sum()) for s in SPLIT_SIZES} == SPLIT_SIZES
    assert dataset.frames.shape[1:] == (layout.NUM_POINTS, layout.NUM_COORDS)
    assert dataset.frames.shape[0] == dataset.offsets[-1] and np.all(dataset.lengths > 0)
    assert np.isfinite(dataset.frames).all()


def test_points_are_the_mapped_raw_files(real_dev):
    root, dataset, _ = real_dev
    for i in np.linspace(0, len(dataset) - 1, 7).astype(int):
        raw = load_raw_landmarks(root / "landmarks" / f"{dataset.video_ids[i]}.npy")
        np.testing.assert_array_equal(dataset.sequence(i), layout.raw_to_spoter(raw))


def test_splits_share_one_vocabulary(real_dev):
    root, everything, cache_dir = real_dev
    train = load_sequence_set(root, split="train", cache=cache_dir)
    test = load_sequence_set(root, split="test", label_names=train.label_names, cache=cache_dir)
    assert (len(train), len(test)) == (SPLIT_SIZES["train"], SPLIT_SIZES["test"])
    assert not set(train.video_ids.tolist()) & set(test.video_ids.tolist())
    names = np.asarray(everything.label_names)[everything.labels]
    by_id = dict(zip(everything.video_ids.tolist(), names.tolist()))
    assert [test.label_names[l] for l in test.labels] == [by_id[v] for v in test.video_ids]


def test_warm_cache_equals_cold_load(real_dev):
    root, cold, cache_dir = real_dev
    warm = load_sequence_set(root, cache=cache_dir)
    assert not warm.frames.flags.writeable
    for name, value in cold.to_arrays().items():
        np.testing.assert_array_equal(getattr(warm, name) if name != "label_names" else warm.label_names, value)


def test_csv_index_gives_the_same_sequences(real_dev):
    root, from_json, _ = real_dev
    from_csv = load_sequence_set(root, index=root / "index.csv", cache=False)
    assert len(from_csv) == NUM_SEQUENCES and from_csv.label_names == from_json.label_names
    assert len(set(from_csv.signer_ids.tolist())) == NUM_SIGNERS
    order = {v: i for i, v in enumerate(from_json.video_ids.tolist())}
    same = from_json.subset([order[v] for v in from_csv.video_ids.tolist()])
    np.testing.assert_array_equal(same.frames, from_csv.frames)
    np.testing.assert_array_equal(same.labels, from_csv.labels)
