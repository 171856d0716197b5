"""SequenceSet: flat storage, selection, vocabularies and the plain-array round trip."""
import numpy as np
import pytest

from datasets import layout
from datasets.sequences import SequenceSet, concatenate

SHAPE = (layout.NUM_POINTS, layout.NUM_COORDS)


def make_sequences(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((n, *SHAPE), dtype=np.float32) for n in lengths]


@pytest.fixture
def dataset():
    sequences = make_sequences([3, 1, 4, 2, 5])
    return SequenceSet.from_sequences(
        sequences, [0, 1, 2, 1, 0], ["hello", "thanks", "yes"],
        video_ids=[f"v{i}" for i in range(5)], signer_ids=["a", "b", "a", "c", "b"],
        splits=["train", "test", "train", "train", "test"],
    ), sequences


def test_from_sequences_stores_every_sample_back_to_back(dataset):
    ds, sequences = dataset
    assert len(ds) == 5
    assert ds.frames.shape == (15, *SHAPE) and ds.frames.dtype == np.float32
    assert ds.offsets.tolist() == [0, 3, 4, 8, 10, 15]
    assert ds.lengths.tolist() == [3, 1, 4, 2, 5]
    for i, sequence in enumerate(sequences):
        np.testing.assert_array_equal(ds.sequence(i), sequence)
    assert ds.video_ids.tolist() == ["v0", "v1", "v2", "v3", "v4"]
    assert ds.num_classes == 3


def test_from_sequences_empty():
    ds = SequenceSet.from_sequences([], [], ["a"])
    assert len(ds) == 0 and ds.frames.shape == (0, *SHAPE)


def test_missing_metadata_becomes_empty_strings():
    ds = SequenceSet.from_sequences(make_sequences([2, 2]), [0, 0], ["a"])
    assert ds.video_ids.tolist() == ["", ""] and ds.splits.tolist() == ["", ""]


@pytest.mark.parametrize("indices", [[4, 0, 2], [2, 2], [-1, 1], []])
def test_subset_with_int_indices_matches_a_naive_selection(dataset, indices):
    ds, sequences = dataset
    sub = ds.subset(indices)
    expected = [i % len(ds) for i in indices]
    assert len(sub) == len(expected)
    for k, i in enumerate(expected):
        np.testing.assert_array_equal(sub.sequence(k), sequences[i])
    assert sub.labels.tolist() == [ds.labels[i] for i in expected]
    assert sub.video_ids.tolist() == [f"v{i}" for i in expected]
    assert sub.signer_ids.tolist() == [ds.signer_ids[i] for i in expected]
    assert sub.label_names == ds.label_names


def test_subset_with_bool_mask_equals_int_indices(dataset):
    ds, _ = dataset
    mask = np.array([True, False, True, False, True])
    by_mask, by_index = ds.subset(mask), ds.subset([0, 2, 4])
    for name, value in by_mask.to_arrays().items():
        np.testing.assert_array_equal(value, by_index.to_arrays()[name], err_msg=name)


@pytest.mark.parametrize("bad", [np.array([True, False]), [5], [-6]])
def test_subset_refuses_bad_indices(dataset, bad):
    with pytest.raises(IndexError):
        dataset[0].subset(bad)


def test_split_selects_by_split_name(dataset):
    ds, _ = dataset
    assert ds.split("test").video_ids.tolist() == ["v1", "v4"]
    assert len(ds.split("val")) == 0


def test_with_label_names_keeps_each_samples_gloss(dataset):
    ds, _ = dataset
    vocabulary = ["yes", "other", "hello", "thanks"]
    remapped = ds.with_label_names(vocabulary)
    assert remapped.label_names == vocabulary
    assert [vocabulary[l] for l in remapped.labels] == [ds.label_names[l] for l in ds.labels]
    np.testing.assert_array_equal(remapped.frames, ds.frames)


def test_with_label_names_refuses_unknown_glosses(dataset):
    with pytest.raises(ValueError, match="thanks"):
        dataset[0].with_label_names(["hello", "yes"])


def test_concatenate_merges_vocabularies_by_name():
    a = SequenceSet.from_sequences(make_sequences([2, 3], 1), [0, 1], ["hello", "yes"], video_ids=["a0", "a1"])
    b = SequenceSet.from_sequences(make_sequences([1, 4], 2), [0, 1], ["no", "hello"], video_ids=["b0", "b1"])
    both = concatenate([a, b])
    assert both.label_names == ["hello", "yes", "no"]
    assert [both.label_names[l] for l in both.labels] == ["hello", "yes", "no", "hello"]
    assert both.video_ids.tolist() == ["a0", "a1", "b0", "b1"]
    np.testing.assert_array_equal(both.frames, np.concatenate([a.frames, b.frames]))
    assert both.offsets.tolist() == [0, 2, 5, 6, 10]


def test_to_arrays_round_trip_through_npz_without_pickle(dataset, tmp_path):
    ds, _ = dataset
    np.savez(tmp_path / "set.npz", **ds.to_arrays())
    with np.load(tmp_path / "set.npz", allow_pickle=False) as arrays:
        back = SequenceSet.from_arrays(arrays)
    for name, value in ds.to_arrays().items():
        np.testing.assert_array_equal(getattr(back, name) if name != "label_names" else back.label_names, value)
    assert back.label_names == ds.label_names and all(type(n) is str for n in back.label_names)


@pytest.mark.parametrize("change, message", [
    (dict(frames=np.zeros((6, 53, 2), np.float32)), "frames"),
    (dict(offsets=[0, 2, 5]), "offsets"),
    (dict(offsets=[0, 4, 2, 6]), "offsets"),
    (dict(labels=[0, 3, 0]), "label"),
    (dict(labels=[0, 1]), "labels"),
    (dict(video_ids=["a"]), "video_ids"),
])
def test_inconsistent_arrays_are_refused(change, message):
    arrays = dict(frames=np.zeros((6, *SHAPE), np.float32), offsets=[0, 2, 4, 6], labels=[0, 1, 0],
                  label_names=["a", "b"], video_ids=None, signer_ids=None, splits=None)
    arrays.update(change)
    with pytest.raises(ValueError, match=message):
        SequenceSet(**arrays)
