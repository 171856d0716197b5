"""The field's pose formats read into the one raw layout: ``.pose`` (pose-format), Kaggle ISLR
parquet, OpenPose and MMPose JSON. Fixtures are written from real-dev clips by the other tools'
own conventions (tests/pose_fixtures.py), read back, and compared after normalisation."""
from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from augmentations.normalization import normalize
from datasets import formats, layout
from datasets.errors import DataError
from datasets.landmark_folder import read_index, read_landmark_folder
from tests import pose_fixtures as fixtures

WIDTH, HEIGHT = 640, 480


def normalised(raw: np.ndarray) -> np.ndarray:
    return normalize(layout.raw_to_spoter(raw))


@pytest.fixture(scope="module")
def real_clips(real_dev_dir):
    """Three real-dev clips of different signers, including frames with a hand missing."""
    rows = list(csv.DictReader(open(real_dev_dir / "index.csv")))
    chosen, signers = [], set()
    for row in rows:
        raw = np.load(real_dev_dir / "landmarks" / f"{row['video_id']}.npy")
        left_missing = np.all(raw[:, 66:108] == 0, axis=1)
        if row["signer_id"] not in signers and 0 < left_missing.sum() < len(raw):
            chosen.append((row["video_id"], row["gloss"], row["signer_id"], raw))
            signers.add(row["signer_id"])
        if len(chosen) == 3:
            break
    assert len(chosen) == 3
    return chosen


WRITERS = {
    "pose (Holistic)": lambda tmp, raw: (fixtures.write_pose_file(tmp / "c.pose", raw, WIDTH, HEIGHT), None),
    "pose (OpenPose components)": lambda tmp, raw: (
        fixtures.write_pose_file(tmp / "c.pose", raw, WIDTH, HEIGHT, openpose=True), None),
    "kaggle parquet": lambda tmp, raw: (fixtures.write_kaggle_parquet(tmp / "c.parquet", raw), None),
    "openpose folder": lambda tmp, raw: (fixtures.write_openpose_folder(tmp / "c", raw, WIDTH, HEIGHT),
                                         (WIDTH, HEIGHT)),
    "mmpose json": lambda tmp, raw: (fixtures.write_mmpose_json(tmp / "c.json", raw, WIDTH, HEIGHT), (WIDTH, HEIGHT)),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_each_format_reads_back_to_the_same_normalised_frames(kind, real_clips, tmp_path):
    for k, (video_id, _, _, raw) in enumerate(real_clips):
        folder = tmp_path / str(k)
        folder.mkdir()
        path, size = WRITERS[kind](folder, raw)
        clip = formats.read_clip(path, size)
        assert clip.raw.dtype == np.float32 and clip.raw.shape == raw.shape
        # the hands are the same blocks, undetected where the .npy has them undetected
        np.testing.assert_array_equal(clip.raw[:, 66:] == 0, raw[:, 66:] == 0)
        np.testing.assert_allclose(normalised(clip.raw), normalised(raw), atol=1e-6, err_msg=f"{kind} {video_id}")


def test_pose_files_keep_fps_and_pick_the_most_confident_person(real_clips, tmp_path, caplog):
    _, _, _, raw = real_clips[0]
    single = formats.read_clip(fixtures.write_pose_file(tmp_path / "one.pose", raw, fps=29.97))
    assert single.fps == pytest.approx(29.97, rel=1e-6)
    with caplog.at_level(logging.INFO, logger="datasets.formats.pose_file"):
        crowd = formats.read_clip(fixtures.write_pose_file(tmp_path / "two.pose", raw, extra_person=True))
    assert "kept person 1" in crowd.note and "kept person 1" in caplog.text
    np.testing.assert_allclose(normalised(crowd.raw), normalised(raw), atol=1e-6)


def test_pixel_json_without_a_frame_size_keeps_proportions(real_clips, tmp_path, caplog):
    """Square video: one factor for both axes is exactly MediaPipe's convention, so frames agree."""
    _, _, _, raw = real_clips[1]
    folder = fixtures.write_openpose_folder(tmp_path / "op", raw, 500, 500, crowd_frame=2)
    with caplog.at_level(logging.INFO):
        clip = formats.read_clip(folder)
    np.testing.assert_allclose(normalised(clip.raw), normalised(raw), atol=1e-6)
    assert "1 of" in clip.note and "most confident" in clip.note
    assert np.abs(clip.raw).max() <= 1.0 + 1e-6


def _one_line(error: pytest.ExceptionInfo, path) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message
    return message


def _bad_files(tmp_path, raw):
    """(path, frame size, words the error must contain) per kind of damage, one format after another."""
    bad = []
    good_pose = fixtures.write_pose_file(tmp_path / "good.pose", raw).read_bytes()
    (tmp_path / "truncated.pose").write_bytes(good_pose[: len(good_pose) // 2])
    bad.append((tmp_path / "truncated.pose", None, "not a readable .pose"))
    (tmp_path / "text.pose").write_text("hello")
    bad.append((tmp_path / "text.pose", None, "not a readable .pose"))
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
    for name, components, words in (
            ("face_only.pose", [("FACE_LANDMARKS", 468)], "no known body component"),
            ("short_hand.pose", [("POSE_LANDMARKS", 33), ("LEFT_HAND_LANDMARKS", 20)], "has 20 points, expected 21")):
        header = PoseHeader(0.2, PoseHeaderDimensions(640, 480, 0), [
            PoseHeaderComponent(n, fixtures.POSE_NAMES if n == "POSE_LANDMARKS" else [str(i) for i in range(k)],
                                [], [(0, 0, 0)], "XYC") for n, k in components])
        points = sum(k for _, k in components)
        with open(tmp_path / name, "wb") as handle:
            Pose(header, NumPyPoseBody(25, np.ones((3, 1, points, 2), np.float32),
                                       np.ones((3, 1, points), np.float32))).write(handle)
        bad.append((tmp_path / name, None, words))

    (tmp_path / "text.parquet").write_text("not parquet")
    bad.append((tmp_path / "text.parquet", None, "not a readable parquet"))
    import pandas as pd
    good = pd.read_parquet(fixtures.write_kaggle_parquet(tmp_path / "good.parquet", raw))
    good.drop(columns=["type"]).to_parquet(tmp_path / "no_type.parquet")
    bad.append((tmp_path / "no_type.parquet", None, "missing column(s) type"))
    odd = good.copy()
    odd.loc[odd.index[0], "type"] = "body"
    odd.to_parquet(tmp_path / "odd_type.parquet")
    bad.append((tmp_path / "odd_type.parquet", None, "column type holds body"))
    far = good.copy()
    far.loc[far["type"] == "pose", "landmark_index"] += 40
    far.to_parquet(tmp_path / "far_index.parquet")
    bad.append((tmp_path / "far_index.parquet", None, "type pose has landmark_index"))

    folder = fixtures.write_openpose_folder(tmp_path / "broken_op", raw[:3])
    (folder / "clip_000000000001_keypoints.json").write_text("{not json")
    bad.append((folder, None, "invalid JSON"))
    folder = fixtures.write_openpose_folder(tmp_path / "short_op", raw[:3])
    frame = json.loads((folder / "clip_000000000000_keypoints.json").read_text())
    frame["people"][0]["pose_keypoints_2d"] = frame["people"][0]["pose_keypoints_2d"][:60]
    (folder / "clip_000000000000_keypoints.json").write_text(json.dumps(frame))
    bad.append((folder, None, "expected BODY_25 (75) or COCO (54)"))
    (tmp_path / "empty_op").mkdir()
    bad.append((tmp_path / "empty_op", None, "holds no OpenPose"))

    (tmp_path / "fifty.json").write_text(json.dumps([{"frame_id": 1, "instances": [
        {"keypoints": [[1, 2]] * 50, "keypoint_scores": [0.9] * 50}]}]))
    bad.append((tmp_path / "fifty.json", None, "50 keypoints per person"))
    (tmp_path / "other.json").write_text(json.dumps({"frames": []}))
    bad.append((tmp_path / "other.json", None, "neither OpenPose nor MMPose"))
    return bad


def test_bad_files_of_each_format_give_one_line_naming_the_file(real_clips, tmp_path):
    for path, size, words in _bad_files(tmp_path, real_clips[0][3]):
        with pytest.raises(DataError) as error:
            formats.read_clip(path, size)
        assert words in _one_line(error, path), (path.name, str(error.value))


def test_a_folder_mixing_formats_loads_the_good_clips_and_reports_each_bad_one(real_clips, tmp_path):
    folder = tmp_path / "landmarks"
    folder.mkdir()
    rows, expected = [], {}
    writers = [lambda raw, vid: np.save(folder / f"{vid}.npy", raw),
               lambda raw, vid: fixtures.write_pose_file(folder / f"{vid}.pose", raw),
               lambda raw, vid: fixtures.write_kaggle_parquet(folder / f"{vid}.parquet", raw)]
    for (video_id, gloss, signer, raw), write in zip(real_clips, writers):
        write(raw, video_id)
        rows.append(f"{video_id},{gloss},{signer},train,,")
        expected[video_id] = raw
    fixtures.write_openpose_folder(folder / "op_clip", real_clips[0][3], WIDTH, HEIGHT)
    rows.append(f"op_clip,{real_clips[0][1]},x,train,{WIDTH},{HEIGHT}")
    expected["op_clip"] = real_clips[0][3]
    (tmp_path / "bad").mkdir()
    bad = _bad_files(tmp_path / "bad", real_clips[1][3])
    for k, (path, _, _) in enumerate(bad):
        target = folder / f"bad{k}{path.suffix}"
        path.rename(target)
        rows.append(f"bad{k},{real_clips[1][1]},y,train,,")
    index = tmp_path / "index.csv"
    index.write_text("video_id,gloss,signer_id,split,frame_width,frame_height\n" + "\n".join(rows) + "\n")
    dataset, report = read_landmark_folder(folder, index)
    assert sorted(dataset.video_ids.tolist()) == sorted(expected)
    assert sorted(v for v, _ in report.skipped) == sorted(f"bad{k}" for k in range(len(bad)))
    assert all("\n" not in reason for _, reason in report.skipped)
    for i, video_id in enumerate(dataset.video_ids.tolist()):
        got = dataset.frames[dataset.offsets[i]:dataset.offsets[i + 1]]
        np.testing.assert_allclose(normalize(got), normalised(expected[video_id]), atol=1e-6)


def test_kaggle_train_csv_is_an_index_with_signers_and_paths(tmp_path):
    (tmp_path / "train.csv").write_text("path,participant_id,sequence_id,sign\n"
                                        "train_landmark_files/26734/1000035562.parquet,26734,1000035562,blow\n")
    [entry] = read_index(tmp_path / "train.csv")
    assert (entry.video_id, entry.gloss, entry.signer_id) == ("1000035562", "blow", "26734")
    assert entry.path == str(tmp_path / "train_landmark_files/26734/1000035562.parquet")
    (tmp_path / "evil.csv").write_text("path,participant_id,sequence_id,sign\n../x.parquet,1,2,blow\n")
    with pytest.raises(DataError, match=r"evil.csv: row 2, column path: '../x.parquet' must be relative"):
        read_index(tmp_path / "evil.csv")


def test_format_point_tables_cover_what_spoter_uses():
    """Every body point SPOTER takes from the raw layout exists in each foreign body layout."""
    needed = {int(i) for i in layout.RAW_SOURCE_INDEX[:layout.NUM_BODY] if i >= 0}
    for names, hands in ((layout.OPENPOSE_BODY_25, (25, 46)), (layout.OPENPOSE_COCO_18, (18, 39)),
                         (layout.COCO_BODY_17, (layout.COCO_WHOLEBODY_LEFT_HAND, layout.COCO_WHOLEBODY_RIGHT_HAND)),
                         (tuple(n for n in layout.POSE_LANDMARKS), (33, 54))):
        source = layout.foreign_source_index(names, *hands)
        assert all(source[i] >= 0 for i in needed), names[:3]
        assert (source[layout.RAW_LEFT_HAND_OFFSET:] >= 0).all()
