"""Personal dictionary files (web demo export): read as a dataset of landmark clips; one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datasets import layout
from datasets.errors import DataError
from datasets.loading import load_sequence_set
from datasets.personal_dictionary import looks_like_dictionary, read_dictionary
from tests.dictionary_fixtures import dictionary_doc, write


def test_read_dictionary_keeps_file_order_and_exact_values(tmp_path):
    doc = dictionary_doc()
    own = read_dictionary(write(tmp_path / "mine.json", doc))
    assert own.model_digest == "0123456789abcdef" and own.metric == "euclidean" and own.embedding_dim == 4
    assert own.glosses == ["my-sign", "other", "my-sign"] and own.label_names() == ["my-sign", "other"]
    assert own.labels().tolist() == [0, 1, 0] and own.signer_ids == ["me", "me", ""]
    np.testing.assert_array_equal(own.embeddings, np.asarray([s["embedding"] for s in doc["signs"]], np.float32))
    for raw, sign in zip(own.landmarks, doc["signs"]):
        np.testing.assert_array_equal(raw, np.asarray(sign["landmarks"], np.float32))


def test_load_sequence_set_reads_a_dictionary_as_landmark_clips(tmp_path):
    """evaluate.py --gallery/--queries FILE.json: the clips, as every other source gives them (SPOTER points)."""
    doc = dictionary_doc()
    path = write(tmp_path / "mine.json", doc)
    assert looks_like_dictionary(path)
    sequences = load_sequence_set(path)
    assert len(sequences) == 3 and sequences.label_names == ["my-sign", "other"]
    assert sequences.labels.tolist() == [0, 1, 0] and sequences.video_ids.tolist() == ["clip0", "clip1", "clip2"]
    for i, sign in enumerate(doc["signs"]):
        np.testing.assert_array_equal(sequences.sequence(i), layout.raw_to_spoter(np.asarray(sign["landmarks"],
                                                                                            np.float32)))
    assert len(load_sequence_set(path, label_names=["other", "my-sign", "x"])) == 3


def test_a_json_that_is_not_a_dictionary_is_refused_with_one_line(tmp_path):
    path = write(tmp_path / "clip.json", {"landmarks": [[0.5] * 150]})
    assert not looks_like_dictionary(path)
    with pytest.raises(DataError, match=r"clip\.json: expected a SPOTER \.csv file, a personal dictionary \.json"):
        load_sequence_set(path)


def broken(doc: dict, change) -> dict:
    doc = json.loads(json.dumps(doc))
    change(doc)
    return doc


BAD = {
    "not_json": ('{"format": "spoter-personal-dictionary", "signs": [', "not valid JSON"),
    "wrong_format": (lambda d: d.update(format="something-else"), "not a personal dictionary"),
    "newer": (lambda d: d.update(version=2), "version 2 is newer than this code"),
    "bad_version": (lambda d: d.update(version="1"), "version must be a positive integer"),
    "metric": (lambda d: d.update(metric="manhattan"), "unknown metric 'manhattan'"),
    "dim": (lambda d: d.update(embedding_dim=0), "embedding_dim must be a positive integer"),
    "no_signs": (lambda d: d.pop("signs"), "no signs array"),
    "sign_not_object": (lambda d: d["signs"].append([1, 2]), "sign 3: expected an object"),
    "no_gloss": (lambda d: d["signs"][1].pop("gloss"), "sign 1: no gloss"),
    "blank_gloss": (lambda d: d["signs"][1].update(gloss="   "), "sign 1: the gloss is blank"),
    "short_embedding": (lambda d: d["signs"][0].update(embedding=[1.0, 2.0]), "sign 0: embedding has 2 values, expected 4"),
    "nan_embedding": (lambda d: d["signs"][2]["embedding"].__setitem__(1, "x"), "sign 2: embedding value 1 is not a finite"),
    "no_landmarks": (lambda d: d["signs"][0].update(landmarks=[]), "sign 0: landmarks must be a non-empty array"),
    "short_frame": (lambda d: d["signs"][0]["landmarks"][3].pop(), "sign 0: landmarks frame 3 has 149 values, expected 150"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_dictionary_gives_one_line_naming_file_and_problem(tmp_path, name):
    change, reason = BAD[name]
    doc = change if isinstance(change, str) else broken(dictionary_doc(), change)
    path = write(tmp_path / f"{name}.json", doc)
    with pytest.raises(DataError) as error:
        read_dictionary(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message, message


def test_missing_dictionary_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_dictionary(tmp_path / "gone.json")
