"""Bad ``.npy`` landmark files met by ``train.py`` (landmark folder + index), ``predict.py`` (the
file itself) and ``evaluate.py`` (a folder: a batch job that skips and reports them).

``preprocessing.py create`` meets the same files; its skip-and-report test with byte-identical
outputs is tests/datasets/test_creation.py::test_bad_items_are_skipped_and_the_rest_is_byte_identical.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from datasets import layout
from tests.robustness.corpus import (TINY_TRAIN, assert_clean_failure, assert_no_traceback, landmark_folder,
                                       run_many)


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _good(frames: int = 12) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.uniform(0.2, 0.8, size=(frames, layout.RAW_FEATURES)).astype(np.float32)


def _with(value: float) -> np.ndarray:
    array = _good()
    array[3, 7] = value
    return array


# name -> (file content, words of the expected reason)
BAD_FILES = {
    "truncated": (_npy(_good())[:200], "not a valid .npy"),
    "wrong_shape": (_npy(np.zeros((12, 99), np.float32)), "expected shape (frames, 150), got (12, 99)"),
    "nan": (_npy(_with(np.nan)), "NaN or infinite"),
    "inf": (_npy(_with(np.inf)), "NaN or infinite"),
    "huge_values": (_npy(_with(1e20)), "not image-relative landmarks"),
    "zero_frames": (_npy(np.zeros((0, layout.RAW_FEATURES), np.float32)), "zero frames"),
    "pickled_objects": (_npy(np.array([{"frames": 1}, None], dtype=object), allow_pickle=True),
                        "pickles are refused"),
    "text_file": (b"0.1,0.2,0.3\n" * 20, "not a .npy file"),
}


@pytest.fixture(scope="module")
def folders(tiny_synthetic_dataset, tmp_path_factory):
    """A clean landmark folder, one folder per bad file, and one holding every bad file."""
    root = tmp_path_factory.mktemp("bad-landmarks")
    made = {"clean": landmark_folder(tiny_synthetic_dataset, root / "clean")}
    for name, (content, _) in BAD_FILES.items():
        made[name] = landmark_folder(tiny_synthetic_dataset, root / name, {f"bad_{name}": content})
    made["all"] = landmark_folder(tiny_synthetic_dataset, root / "all",
                                  {f"bad_{name}": content for name, (content, _) in BAD_FILES.items()})
    # folders of inputs for predict.py: four good clips, alone and among every bad file
    for name in ("inputs_clean", "inputs_all"):
        (root / name).mkdir()
        for clip in sorted((tiny_synthetic_dataset / "landmarks").glob("*.npy"))[::16]:
            (root / name / clip.name).write_bytes(clip.read_bytes())
        made[name] = root / name
    for name, (content, _) in BAD_FILES.items():
        (root / "inputs_all" / f"bad_{name}.npy").write_bytes(content)
    return made


@pytest.fixture(scope="module")
def results(folders, corpus_gallery, tiny_checkpoint, corpus_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-landmarks-out")
    predict = ["predict.py", "--checkpoint", str(tiny_checkpoint), "--gallery", str(corpus_gallery)]
    commands = {}
    for name in BAD_FILES:
        commands[f"train-{name}"] = ["train.py", "--training_set_path", str(folders[name]), "--train_split", "train",
                                     "--out_dir", str(out / name), *TINY_TRAIN]
        commands[f"predict-{name}"] = [*predict, str(folders[name] / "landmarks" / f"bad_{name}.npy")]
    commands["train-skip"] = ["train.py", "--training_set_path", str(folders["all"]), "--train_split", "train",
                              "--out_dir", str(out / "skip"), "--skip_bad_files", *TINY_TRAIN]
    for name in ("clean", "all"):
        commands[f"evaluate-{name}"] = [
            "evaluate.py", "--checkpoint", str(tiny_checkpoint), "--gallery", str(folders[name]), "--no-baseline",
            "--quiet", "--save-gallery", str(out / f"{name}.npz"), "--output-json", str(out / f"{name}.json")]
    for name in ("inputs_clean", "inputs_all"):
        commands[f"predict-{name}"] = [*predict, str(folders[name]), "--json"]
    runs = run_many(commands, corpus_env)
    return runs, out


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_train_stops_with_one_line_naming_the_file(results, folders, name):
    runs, _ = results
    bad = folders[name] / "landmarks" / f"bad_{name}.npy"
    assert_clean_failure(runs[f"train-{name}"], 1, str(bad), BAD_FILES[name][1], "--skip_bad_files")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_predict_refuses_the_file_in_one_line(results, folders, name):
    runs, _ = results
    bad = folders[name] / "landmarks" / f"bad_{name}.npy"
    assert_clean_failure(runs[f"predict-{name}"], 1, str(bad), BAD_FILES[name][1])


def test_train_with_skip_bad_files_names_each_skipped_file_and_trains_on_the_rest(results, folders):
    from models.checkpoint import load_checkpoint
    runs, out = results
    run = runs["train-skip"]
    assert_no_traceback(run)
    assert run.status == 0, run.describe()
    for name, (_, reason) in BAD_FILES.items():
        named = [line for line in run.lines if f"bad_{name}.npy" in line]
        assert named and reason in named[0], (name, run.describe())
    checkpoint = load_checkpoint(next((out / "skip").glob("*/last.pth")))
    assert len(checkpoint["label_names"]) == 8  # every gloss of the good files is still there


def test_evaluate_over_a_folder_skips_bad_files_and_loses_no_good_one(results):
    runs, out = results
    clean, dirty = runs["evaluate-clean"], runs["evaluate-all"]
    for run in (clean, dirty):
        assert_no_traceback(run)
        assert run.status in (0, 1), run.describe()
    assert clean.status == 0, clean.describe()
    for name, (_, reason) in BAD_FILES.items():
        named = [line for line in dirty.lines if f"bad_{name}" in line]
        assert named and reason in named[0], (name, dirty.describe())
    # the gallery of the good items is the same, array for array and byte for byte
    with np.load(out / "clean.npz", allow_pickle=False) as a, np.load(out / "all.npz", allow_pickle=False) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), key
    reports = [json.loads((out / f"{name}.json").read_text()) for name in ("clean", "all")]
    assert reports[0]["results"] == reports[1]["results"]
    assert reports[0]["gallery"]["samples"] == reports[1]["gallery"]["samples"]


def test_predict_over_a_folder_reports_bad_files_and_answers_the_good_ones_unchanged(results, folders):
    runs, _ = results
    clean, dirty = runs["predict-inputs_clean"], runs["predict-inputs_all"]
    assert_no_traceback(dirty)
    assert clean.status == 0 and dirty.status == 1, (clean.describe(), dirty.describe())
    errors = [line for line in dirty.lines if line.startswith("error:")]
    assert len(errors) == len(BAD_FILES), dirty.describe()
    for name, (_, reason) in BAD_FILES.items():
        bad = folders["inputs_all"] / f"bad_{name}.npy"
        assert any(line.startswith(f"error: {bad}: ") and reason in line for line in errors), (name, errors)
    answers = [{Path(p["input"]).name: {k: v for k, v in p.items() if k != "input"}
                for p in json.loads(run.stdout)["predictions"] if "top" in p} for run in (clean, dirty)]
    assert len(answers[0]) == 4 and answers[0] == answers[1]
