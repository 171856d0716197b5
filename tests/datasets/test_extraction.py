"""Tests for the datasets/extraction/ package: videos → raw Holistic landmarks.

MediaPipe runs at ≈30 frames/s here, so the clips are short. Real pixels come from
``../shared`` (a real signer) and Debian's ``opencv-doc`` (``messi5.jpg``: pose and both
hands visible); tests needing them skip with the reason when absent. The parts that
need no video are tested in ``test_extraction_parts.py``.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from datasets import extraction, layout
from datasets.errors import UsageError

cv2 = pytest.importorskip("cv2")

MESSI_FALLBACK = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")


def find_messi() -> Path | None:
    """``messi5.jpg`` from the opencv-doc package (asked from dpkg, else its usual place)."""
    if shutil.which("dpkg"):
        listing = subprocess.run(["dpkg", "-L", "opencv-doc"], capture_output=True, text=True, check=False).stdout
        for line in listing.splitlines():
            if line.endswith("/messi5.jpg") and Path(line).is_file():
                return Path(line)
    return MESSI_FALLBACK if MESSI_FALLBACK.is_file() else None


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Write BGR frames with OpenCV's mp4v encoder (the one PyPI OpenCV has)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def jittered(image: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` copies of a photograph, each shifted by a few pixels (a still, hand-held camera)."""
    height, width = image.shape[:2]
    frames = []
    for dx, dy in rng.integers(-3, 4, size=(count, 2)):
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(image, shift, (width, height), borderMode=cv2.BORDER_REPLICATE))
    return frames


@pytest.fixture(scope="module")
def messi_image() -> np.ndarray:
    path = find_messi()
    if path is None:
        pytest.skip("messi5.jpg not found: install Debian package opencv-doc (bash scripts/setup_env.sh --test)")
    return cv2.imread(str(path))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, messi_image) -> Path:
    """A folder of short clips: messi (12 frames), blank (6 frames, nobody), sandwich (3 blank, 6 messi, 3 blank)."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(7)
    blank = np.full_like(messi_image, 127)
    write_video(folder / "messi.mp4", jittered(messi_image, 12, rng))
    write_video(folder / "blank.mp4", [blank] * 6)
    write_video(folder / "sandwich.mp4", [blank] * 3 + jittered(messi_image, 6, rng) + [blank] * 3)
    return folder


def only(folder: Path, names: list[str], dest: Path) -> Path:
    """A videos folder holding copies of just ``names`` from ``folder``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(folder / name, dest / name)
    return dest


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def shares(raw: np.ndarray) -> np.ndarray:
    """Frames with pose / left hand / right hand, counted naively point group by point group."""
    counts = np.zeros(3, int)
    for frame in raw:
        points = frame.reshape(layout.NUM_RAW_POINTS, layout.NUM_COORDS)
        groups = (points[:layout.NUM_POSE], points[layout.RAW_LEFT_HAND_OFFSET:layout.RAW_RIGHT_HAND_OFFSET],
                  points[layout.RAW_RIGHT_HAND_OFFSET:])
        counts += [int(np.any(g != 0)) for g in groups]
    return counts


# ------------------------------------------------------------------------ with MediaPipe
def test_real_signer_video(shared_dir, tmp_path):
    video = shared_dir / "data" / "video" / "test_video.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    folder = only(video.parent, [video.name], tmp_path / "videos")
    summary = extraction.extract_landmarks(folder, tmp_path / "out", workers=0, progress=False)
    assert summary.extracted == ["test_video"] and not summary.failures
    raw = np.load(tmp_path / "out" / "test_video.npy", allow_pickle=False)
    assert raw.dtype == np.float32 and raw.shape == (58, layout.RAW_FEATURES)
    pose, left, right = shares(raw)
    assert pose >= 55 and right >= 15
    (row,) = read_csv(tmp_path / "out" / "manifest.csv")
    assert row["video"] == "test_video" and int(row["frames"]) == 58
    assert float(row["pose_share"]) == pytest.approx(pose / 58, abs=1e-4)
    assert float(row["right_hand_share"]) == pytest.approx(right / 58, abs=1e-4)
    clip_length = float(row["seconds"])  # the video's own length in the manifest, not a timing
    assert clip_length == pytest.approx(58 / float(row["fps"]), abs=1e-2)


def test_photo_clip_finds_pose_and_both_hands_and_bad_files_are_skipped(clips, tmp_path):
    good = only(clips, ["messi.mp4"], tmp_path / "good")
    alone = extraction.extract_landmarks(good, tmp_path / "alone", workers=0, progress=False)
    raw = np.load(tmp_path / "alone" / "messi.npy", allow_pickle=False)
    assert raw.shape == (12, layout.RAW_FEATURES) and raw.dtype == np.float32
    assert (shares(raw) >= 0.8 * len(raw)).all()
    assert alone.failures == []

    mixed = only(clips, ["messi.mp4"], tmp_path / "mixed")
    (mixed / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    (mixed / "empty.mp4").write_bytes(b"")
    summary = extraction.extract_landmarks(mixed, tmp_path / "out", workers=2, progress=False)
    assert summary.extracted == ["messi"]
    assert [video for video, _ in summary.failures] == ["empty", "noise"]
    failures = read_csv(tmp_path / "out" / "failures.csv")
    assert [f["video"] for f in failures] == ["empty", "noise"]
    assert "empty file" in failures[0]["reason"] and "noise.mp4" in failures[1]["reason"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npy")) == ["messi.npy"]
    # byte-identical to the run without bad files (which ran in-process, not in a worker pool)
    assert (tmp_path / "out" / "messi.npy").read_bytes() == (tmp_path / "alone" / "messi.npy").read_bytes()
    assert read_csv(tmp_path / "out" / "manifest.csv") == read_csv(tmp_path / "alone" / "manifest.csv")


def test_tracker_is_reset_between_videos(clips):
    """A video's landmarks must not depend on what the worker processed before it."""
    holistic = extraction.create_holistic(1)
    try:
        job = extraction.VideoJob(clips / "messi.mp4", "messi.mp4", "messi")
        first, row, _ = extraction.extract_video(job, holistic)
        again, _, _ = extraction.extract_video(job, holistic)  # tracking would carry over from the last frame
        extraction.extract_video(extraction.VideoJob(clips / "sandwich.mp4", "sandwich.mp4", "sandwich"), holistic)
        after_other, _, _ = extraction.extract_video(job, holistic)
    finally:
        holistic.close()
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(after_other, first)
    assert row["frames"] == 12 and row["video"] == "messi"


def test_truncated_video_is_reported(clips, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    data = (clips / "messi.mp4").read_bytes()
    # mp4v files keep their index at the end: cutting it loses the index
    (folder / "cut.mp4").write_bytes(data[: len(data) // 2])
    summary = extraction.extract_landmarks(folder, tmp_path / "out", workers=0, progress=False)
    assert [v for v, _ in summary.failures] == ["cut"] and not (tmp_path / "out" / "cut.npy").exists()


def test_truncated_stream_detected_by_declared_frame_count(shared_dir, tmp_path):
    """A file whose index survives but whose frames are cut decodes fewer frames than declared."""
    video = shared_dir / "data" / "video" / "test_video.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    data = video.read_bytes()
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "cut.mp4").write_bytes(data[: int(len(data) * 0.3)])
    summary = extraction.extract_landmarks(folder, tmp_path / "out", workers=0, progress=False)
    (video_id, reason), = summary.failures
    assert video_id == "cut" and "truncated" in reason and "of the 58 frames" in reason


def test_video_without_person_is_written_and_flagged(clips, tmp_path):
    folder = only(clips, ["blank.mp4"], tmp_path / "videos")
    summary = extraction.extract_landmarks(folder, tmp_path / "out", workers=0, progress=False)
    assert summary.failures == [] and summary.no_person == ["blank"]
    raw = np.load(tmp_path / "out" / "blank.npy", allow_pickle=False)
    assert raw.shape == (6, layout.RAW_FEATURES) and not raw.any()
    (row,) = read_csv(tmp_path / "out" / "manifest.csv")
    assert float(row["pose_share"]) == 0.0


def test_index_trims_frames(clips, tmp_path):
    """sandwich.mp4 = 3 blank, 6 messi, 3 blank frames; a range off by one would show in pose_share."""
    folder = only(clips, ["sandwich.mp4"], tmp_path / "videos")
    full = extraction.extract_landmarks(folder, tmp_path / "full", workers=0, progress=False)
    assert full.extracted == ["sandwich"]
    whole = np.load(tmp_path / "full" / "sandwich.npy", allow_pickle=False)
    assert (np.any(whole != 0, axis=1) == np.repeat([False, True, False], [3, 6, 3])).all()
    cases = [((4, 9), 6, 1.0, slice(3, 9)), ((3, 8), 6, 5 / 6, slice(2, 8)), ((4, -1), 9, 6 / 9, slice(3, 12))]
    for k, ((start, end), frames, pose_share, rows) in enumerate(cases):
        index = tmp_path / f"index{k}.json"
        index.write_text(json.dumps([{"gloss": "x", "instances": [
            {"video_id": "sandwich", "frame_start": start, "frame_end": end}]}]))
        out = tmp_path / f"out{k}"
        extraction.extract_landmarks(folder, out, workers=0, index=index, progress=False)
        raw = np.load(out / "sandwich.npy", allow_pickle=False)
        assert raw.shape == (frames, layout.RAW_FEATURES)
        # blank frames leave MediaPipe without state, so the trimmed run equals the slice
        np.testing.assert_array_equal(raw, whole[rows])
        (row,) = read_csv(out / "manifest.csv")
        assert float(row["pose_share"]) == pytest.approx(pose_share, abs=1e-4)
        assert (int(row["frame_start"]), int(row["frame_end"])) == (start, end)
    index = tmp_path / "late.csv"
    index.write_text("video_id,gloss,frame_start,frame_end\nsandwich,x,40,50\n")
    late = extraction.extract_landmarks(folder, tmp_path / "late", workers=0, index=index, progress=False)
    assert "index starts at frame 40 but the video has only 12 frames" in late.failures[0][1]


def test_rerun_skips_complete_outputs_and_redoes_damaged_ones(clips, tmp_path):
    folder = only(clips, ["messi.mp4", "blank.mp4", "sandwich.mp4"], tmp_path / "videos")
    out = tmp_path / "out"
    first = extraction.extract_landmarks(folder, out, workers=0, progress=False)
    reference = {p.name: p.read_bytes() for p in out.glob("*.npy")}
    manifest = (out / "manifest.csv").read_bytes()
    again = extraction.extract_landmarks(folder, out, workers=0, progress=False)
    assert again.extracted == [] and sorted(again.skipped) == sorted(first.extracted)
    # damage: a truncated .npy, a .npy with the wrong frame count, a lost record
    (out / "messi.npy").write_bytes(reference["messi.npy"][:500])
    np.save(out / "blank.npy", np.zeros((5, layout.RAW_FEATURES), np.float32))
    (out / extraction.RECORDS_DIR / "sandwich.json").unlink()
    redo = extraction.extract_landmarks(folder, out, workers=0, progress=False)
    assert redo.extracted == ["blank", "messi", "sandwich"]
    assert {p.name: p.read_bytes() for p in out.glob("*.npy")} == reference
    assert (out / "manifest.csv").read_bytes() == manifest
    # other settings are not "complete": a different trim redoes the video
    index = tmp_path / "index.csv"
    index.write_text("video_id,gloss,frame_start,frame_end\nmessi,x,2,5\n")
    trimmed = extraction.extract_landmarks(folder, out, workers=0, index=index, progress=False)
    assert trimmed.extracted == ["messi"] and trimmed.not_in_index == ["blank", "sandwich"]
    assert np.load(out / "messi.npy", allow_pickle=False).shape == (4, layout.RAW_FEATURES)


def test_overwrite_and_name_collisions(clips, tmp_path):
    folder = only(clips, ["messi.mp4"], tmp_path / "videos")
    shutil.copy(clips / "blank.mp4", folder / "messi.avi")  # same id "messi"
    out = tmp_path / "out"
    summary = extraction.extract_landmarks(folder, out, workers=0, progress=False)
    assert summary.extracted == ["messi"]
    ((video, reason),) = summary.failures
    assert video == "messi" and "messi.mp4: output name messi.npy is already used by messi.avi" in reason
    assert np.load(out / "messi.npy", allow_pickle=False).shape == (6, layout.RAW_FEATURES)  # messi.avi won
    again = extraction.extract_landmarks(folder, out, workers=0, overwrite=True, progress=False,
                                         extensions="mp4")
    assert again.extracted == ["messi"] and again.skipped == []
    assert np.load(out / "messi.npy", allow_pickle=False).shape == (12, layout.RAW_FEATURES)


def test_recursive_names_and_shards(clips, tmp_path):
    folder = tmp_path / "videos"
    for sub in ("hello", "bye"):
        only(clips, ["messi.mp4", "blank.mp4"], folder / sub)
    out = tmp_path / "out"
    ids = set()
    for i in range(2):
        summary = extraction.extract_landmarks(folder, out, workers=0, recursive=True, num_shards=2, shard_index=i,
                                               progress=False)
        assert summary.manifest.name == f"manifest-{i}-of-2.csv" and summary.videos == 2
        assert not ids & set(summary.extracted)
        ids |= set(summary.extracted)
    assert ids == {"bye__blank", "bye__messi", "hello__blank", "hello__messi"}
    merged = extraction.merge_shards(out)
    assert (merged.videos, merged.failures) == (4, 0)
    assert [r["video"] for r in read_csv(out / "manifest.csv")] == sorted(ids)


def test_missing_folder_and_empty_folder_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        extraction.extract_landmarks(tmp_path / "nope", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no videos with extensions mp4,avi,mov,mkv,webm"):
        extraction.extract_landmarks(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(UsageError, match="--workers"):
        extraction.extract_landmarks(tmp_path / "empty", tmp_path / "out", workers=-1, progress=False)


def spawned_workers() -> list[int]:
    """Pids of this process's multiprocessing spawn children (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"spawn_main" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_dying_workers_lose_no_other_video(clips, messi_image, tmp_path, caplog):
    """SIGKILL a worker mid-run, then the single worker that retries its videos.

    The first death only costs a retry; the second pins the video being processed then,
    which is reported as failed, and every other video is extracted as usual.
    """
    if not Path("/proc/self/stat").is_file():
        pytest.skip("needs /proc to find the worker processes")
    folder = tmp_path / "videos"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for k in range(4):
        write_video(folder / f"long{k}.mp4", jittered(messi_image, 30, rng))
    reference = extraction.extract_landmarks(folder, tmp_path / "reference", workers=0, progress=False)
    out = tmp_path / "out"
    result: dict = {}

    def run():
        try:
            result["summary"] = extraction.extract_landmarks(folder, out, workers=2, progress=False)
        except BaseException as error:  # re-raised below, so the failure names its cause
            result["error"] = error

    runner = threading.Thread(target=run)
    runner.start()
    killed, first_pool = [], set()
    while runner.is_alive() and len(killed) < 2:
        workers = set(spawned_workers())
        target = (min(workers) if workers and any(out.glob("*.npy")) else None) if not killed \
            else min(workers - first_pool, default=None)
        if target is not None:
            first_pool |= workers
            os.kill(target, signal.SIGKILL)
            killed.append(target)
        time.sleep(0.02)
    runner.join(timeout=600)
    assert not runner.is_alive(), "extraction hung after its workers were killed"
    if "error" in result:
        raise result["error"]
    summary = result["summary"]
    if len(killed) < 2:
        pytest.skip(f"the run finished before two workers could be killed (killed {len(killed)})")
    assert "a worker process died; retrying its" in caplog.text
    # the second kill normally hits the retrying worker mid-video; it can also land just
    # after its last video, when there is nothing left to blame
    assert len(summary.failures) <= 1, summary.failures
    for culprit, reason in summary.failures:
        assert "the worker process died while processing it" in reason
        assert not (out / f"{culprit}.npy").exists()
    failed = {v for v, _ in summary.failures}
    assert summary.extracted == [v for v in reference.extracted if v not in failed]
    for name in summary.extracted:
        assert (out / f"{name}.npy").read_bytes() == (tmp_path / "reference" / f"{name}.npy").read_bytes()


def test_pose_output_is_pose_formats_own_holistic_file_and_matches_the_npy(clips, tmp_path):
    """``--format both``: the .pose reads back through the pose-format library itself (header,
    sizes, fps, pixels) and, through our reader, to the .npy's normalised frames."""
    from pose_format import Pose

    from datasets import formats
    from augmentations.normalization import normalize

    folder = only(clips, ["messi.mp4", "sandwich.mp4"], tmp_path / "videos")
    out = tmp_path / "out"
    first = extraction.extract_landmarks(folder, out, workers=0, progress=False, outputs="both")
    assert first.extracted == ["messi", "sandwich"] and not first.failures
    rows = {r["video"]: r for r in read_csv(out / "manifest.csv")}
    for video in ("messi", "sandwich"):
        raw = np.load(out / f"{video}.npy")
        pose = Pose.read((out / f"{video}.pose").read_bytes())
        assert [c.name for c in pose.header.components] == [
            "POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS", "POSE_WORLD_LANDMARKS"]
        width, height = int(rows[video]["width"]), int(rows[video]["height"])
        assert (pose.header.dimensions.width, pose.header.dimensions.height) == (width, height)
        assert pose.body.fps == pytest.approx(float(rows[video]["fps"]))
        assert pose.body.data.shape == (len(raw), 1, 576, 3)
        # pose-format's own view of the pose points: pixels of the .npy's image-relative points
        body = np.ma.getdata(pose.body.data)[:, 0, :33, :2] / np.array([width, height])
        np.testing.assert_allclose(body, raw[:, :66].reshape(-1, 33, 2), atol=1e-6)
        face_seen = pose.body.confidence[:, 0, 33:33 + 468] > 0
        assert face_seen.any()  # the face is kept, which the .npy has no room for
        np.testing.assert_array_equal(pose.body.confidence[:, 0, 501:522] > 0, np.any(raw[:, 66:108] != 0, axis=1)[:, None]
                                      .repeat(21, 1))
        clip = formats.read_clip(out / f"{video}.pose")
        np.testing.assert_allclose(normalize(layout.raw_to_spoter(clip.raw)), normalize(layout.raw_to_spoter(raw)),
                                   atol=1e-5)
    # resuming knows the .pose: a rerun skips both, a damaged .pose is redone
    again = extraction.extract_landmarks(folder, out, workers=0, progress=False, outputs="both")
    assert again.extracted == [] and sorted(again.skipped) == ["messi", "sandwich"]
    (out / "messi.pose").write_bytes((out / "messi.pose").read_bytes()[:300])
    redo = extraction.extract_landmarks(folder, out, workers=0, progress=False, outputs="both")
    assert redo.extracted == ["messi"]
    only_pose = extraction.extract_landmarks(folder, tmp_path / "pose_only", workers=0, progress=False, outputs="pose")
    assert only_pose.extracted == ["messi", "sandwich"]
    assert sorted(p.name for p in (tmp_path / "pose_only").glob("*.*") if p.suffix in (".npy", ".pose")) == [
        "messi.pose", "sandwich.pose"]
