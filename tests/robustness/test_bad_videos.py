"""Bad video files met by ``preprocessing.py extract`` (a batch job: each bad video is skipped,
named with its reason and listed in failures.csv; the run exits 1) and ``predict.py`` (each
bad input gets its own ``error:`` line, the good inputs are still answered; exit 1).

A video in which nobody is visible is not an error for ``extract``: it is written as
all-zero landmarks and named in a warning (exit 0 if nothing else failed, see
tests/test_preprocessing_cli.py::test_video_without_person_exits_0_with_warning);
``predict`` refuses it ("no person detected").

"A folder with unreadable permissions" cannot be made here: the tests run as root, for
whom ``chmod 000`` changes nothing. It is simulated by what a reader meets in its place:
a dangling symbolic link named ``.mp4`` (a file that cannot be opened), a folder named
``.mp4``, and (in test_bad_arguments.py) a videos folder that is a file and an output
folder under a file. Good videos extracted beside bad ones are byte-identical to a run
without them: tests/datasets/test_extraction.py::test_photo_clip_finds_pose_and_both_hands_and_bad_files_are_skipped.
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.robustness.corpus import assert_clean_failure, assert_no_traceback, run_many

cv2 = pytest.importorskip("cv2")

MESSI_FALLBACK = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")

# video file name -> words of the reason (None: not a failure for extract)
BAD_VIDEOS = {
    "random_bytes.mp4": "not a readable video",
    "empty.mp4": "empty file (0 bytes)",
    "truncated.mp4": "not a readable video",
    "photo_renamed.mp4": "a single still image",
    "blank_image_renamed.mp4": "a single still image",
    "broken_link.mp4": "cannot read file",
}
NOBODY = "nobody.mp4"


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A folder with one good clip (a photograph of a person, 6 frames), the bad ones and an empty scene."""
    photo = MESSI_FALLBACK if MESSI_FALLBACK.is_file() else None
    if photo is None:
        pytest.skip("messi5.jpg not found: install Debian package opencv-doc (bash scripts/setup_env.sh --test)")
    folder = tmp_path_factory.mktemp("bad-videos")
    image = cv2.resize(cv2.imread(str(photo)), (274, 171))
    good = _write_video(folder / "good.mp4", [np.roll(image, k, axis=1) for k in range(6)])
    (folder / "random_bytes.mp4").write_bytes(np.random.default_rng(2).bytes(30_000))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    shutil.copy(photo, folder / "photo_renamed.mp4")
    (folder / "blank_image_renamed.mp4").write_bytes(cv2.imencode(".png", np.full((90, 120, 3), 80, np.uint8))[1])
    os.symlink(folder / "gone" / "video.mp4", folder / "broken_link.mp4")
    _write_video(folder / NOBODY, [np.full((120, 160, 3), 40 * k, np.uint8) for k in range(5)])
    (folder / "a_folder.mp4").mkdir()
    return folder


@pytest.fixture(scope="module")
def results(videos, tiny_checkpoint, tiny_synthetic_dataset, corpus_gallery, corpus_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-videos-out")
    good_clip = sorted((tiny_synthetic_dataset / "landmarks").glob("*.npy"))[0]
    predict = ["predict.py", "--checkpoint", str(tiny_checkpoint), "--gallery", str(corpus_gallery)]
    commands = {
        "extract": ["preprocessing.py", "extract", "--videos-folder", str(videos), "--output-landmarks",
                    str(out / "landmarks"), "--workers", "1"],
        "predict": [*predict, *(str(videos / name) for name in (*BAD_VIDEOS, NOBODY)), str(good_clip), "--json"],
        "predict-folder-named-mp4": [*predict, str(videos / "a_folder.mp4")],
    }
    return run_many(commands, corpus_env), out


def test_extract_names_each_bad_video_and_keeps_the_good_ones(results, videos):
    runs, out = results
    run = runs["extract"]
    assert_clean_failure(run, 1, f"{len(BAD_VIDEOS)} video(s) failed", "failures.csv")
    for name, reason in BAD_VIDEOS.items():
        named = [line for line in run.lines if f"skipped {name}:" in line]
        assert named and reason in named[0], (name, run.describe())
    with open(out / "landmarks" / "failures.csv", newline="") as handle:
        failures = {row["video"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(failures) == {Path(name).stem for name in BAD_VIDEOS}, failures
    assert all(failures[Path(n).stem].startswith(f"{n}: ") and r in failures[Path(n).stem]
               for n, r in BAD_VIDEOS.items()), failures
    # good and empty-scene videos are written; nothing else (no partial file of a bad one)
    assert sorted(p.name for p in (out / "landmarks").glob("*.npy")) == ["good.npy", "nobody.npy"]
    assert np.load(out / "landmarks" / "good.npy").shape == (6, 150)
    assert any("no person detected" in line and "nobody" in line for line in run.lines), run.describe()


def test_predict_names_each_bad_video_and_answers_the_good_input(results, videos):
    import json
    run = results[0]["predict"]
    assert_no_traceback(run)
    assert run.status == 1, run.describe()
    errors = [line for line in run.lines if line.startswith("error:")]
    assert len(errors) == len(BAD_VIDEOS) + 1, run.describe()  # one line per bad input, nothing else
    for name, reason in {**BAD_VIDEOS, "broken_link.mp4": "file not found", NOBODY: "no person detected"}.items():
        named = [line for line in errors if line.startswith(f"error: {videos / name}: ")]
        assert named and reason in named[0], (name, run.describe())
    answered = [p for p in json.loads(run.stdout)["predictions"] if "top" in p]
    assert len(answered) == 1 and len(answered[0]["top"]) == 5


def test_predict_on_a_folder_named_like_a_video(results, videos):
    assert_clean_failure(results[0]["predict-folder-named-mp4"], 2, str(videos / "a_folder.mp4"), "holds no landmark (.npy")
