"""Tests for the parts of datasets/extraction/ that need no video: landmark packing, video
listing, shards, trims, the bundled model check, the package's exports and shard merging.

The tests that run MediaPipe on real pixels are in ``test_extraction.py``.
"""
from __future__ import annotations

import json
import urllib.error
from types import SimpleNamespace

import numpy as np
import pytest

from datasets import extraction, layout
from datasets.extraction import mediapipe_runner
from datasets.errors import DataError, UsageError


# ------------------------------------------------------------------------ pure functions
def fake_group(count: int, base: float):
    points = [SimpleNamespace(x=base + i / 100, y=base + i / 1000, z=9.0) for i in range(count)]
    return SimpleNamespace(landmark=points)


def test_landmarks_to_vector_puts_each_group_in_its_raw_slot():
    pose, right = fake_group(layout.NUM_POSE, 0.1), fake_group(layout.NUM_HAND, 0.5)
    results = SimpleNamespace(pose_landmarks=pose, left_hand_landmarks=None, right_hand_landmarks=right,
                              face_landmarks=fake_group(468, 0.9))
    vector = extraction.landmarks_to_vector(results)
    assert vector.shape == (layout.RAW_FEATURES,) and vector.dtype == np.float32
    points = vector.reshape(layout.NUM_RAW_POINTS, layout.NUM_COORDS)
    expected = np.zeros_like(points)
    for i, p in enumerate(pose.landmark):
        expected[layout.RAW_POSE_OFFSET + i] = (p.x, p.y)
    for i, p in enumerate(right.landmark):
        expected[layout.RAW_RIGHT_HAND_OFFSET + i] = (p.x, p.y)
    np.testing.assert_array_equal(points, expected.astype(np.float32))
    # the SPOTER mapping sees the right wrist and no left hand
    spoter = layout.raw_to_spoter(vector)
    np.testing.assert_allclose(spoter[layout.RIGHT_HAND_SLICE][0], (0.5, 0.5), rtol=1e-6)
    assert layout.missing_mask(spoter[layout.LEFT_HAND_SLICE]).all()


def test_landmarks_to_vector_with_real_protobuf_and_reused_buffer():
    landmark_pb2 = pytest.importorskip("mediapipe.framework.formats.landmark_pb2")
    hand = landmark_pb2.NormalizedLandmarkList()
    for i in range(layout.NUM_HAND):
        hand.landmark.add(x=i / 21, y=1 - i / 21)
    buffer = np.full(layout.RAW_FEATURES, 7.0, np.float32)  # stale values must be cleared
    results = SimpleNamespace(pose_landmarks=None, left_hand_landmarks=hand, right_hand_landmarks=None)
    vector = extraction.landmarks_to_vector(results, out=buffer)
    left = vector.reshape(-1, 2)[layout.RAW_LEFT_HAND_OFFSET:layout.RAW_RIGHT_HAND_OFFSET]
    np.testing.assert_allclose(left[:, 0], np.arange(21) / 21, rtol=1e-6)
    np.testing.assert_allclose(left[:, 1], 1 - np.arange(21) / 21, rtol=1e-6)
    assert np.count_nonzero(vector) == np.count_nonzero(left)


def test_landmarks_to_vector_refuses_wrong_point_count():
    results = SimpleNamespace(pose_landmarks=fake_group(30, 0.1), left_hand_landmarks=None, right_hand_landmarks=None)
    with pytest.raises(ValueError, match="expected 33"):
        extraction.landmarks_to_vector(results)


def test_list_videos_sorts_filters_and_names(tmp_path):
    for name in ("b.MP4", "a.avi", "notes.txt", ".hidden.mp4", "sub/c.mov", "sub/deeper/d.webm", ".cache/e.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert extraction.list_videos(tmp_path) == ["a.avi", "b.MP4"]
    found = extraction.list_videos(tmp_path, ["mp4", "mov", "webm", "avi"], recursive=True)
    assert found == ["a.avi", "b.MP4", "sub/c.mov", "sub/deeper/d.webm"]
    assert [extraction.video_id(f, True) for f in found] == ["a", "b", "sub__c", "sub__deeper__d"]
    assert extraction.video_id("sub/c.mov", False) == "c"
    with pytest.raises(UsageError, match="does not exist"):
        extraction.list_videos(tmp_path / "missing")


def test_parse_extensions():
    assert extraction.parse_extensions(" mp4, .AVI,mp4 ") == ("mp4", "avi")
    with pytest.raises(UsageError):
        extraction.parse_extensions(" , ")


def test_shards_cover_every_item_exactly_once():
    items = [f"v{i:02d}" for i in range(11)]
    for n in (1, 2, 3, 11, 15):
        parts = [extraction.shard(items, n, i) for i in range(n)]
        assert sorted(sum(parts, [])) == items
        assert parts == [extraction.shard(items, n, i) for i in range(n)]  # deterministic
    assert extraction.shard(items, 3, 1) == ["v01", "v04", "v07", "v10"]
    for n, i in ((0, 0), (2, 2), (2, -1)):
        with pytest.raises(UsageError):
            extraction.shard(items, n, i)


def test_load_trims_json_and_csv(tmp_path):
    wlasl = [{"gloss": "book", "instances": [{"video_id": "v1", "frame_start": 5, "frame_end": 20},
                                            {"video_id": "v2", "frame_start": 1, "frame_end": -1}]},
             {"gloss": "drink", "instances": [{"video_id": "v3"},
                                             {"video_id": "v1", "frame_start": 5, "frame_end": 20}]}]
    (tmp_path / "index.json").write_text(json.dumps(wlasl))
    assert extraction.load_trims(tmp_path / "index.json") == {"v1": (5, 20), "v2": (1, -1), "v3": (1, -1)}
    (tmp_path / "index.csv").write_text("video_id,gloss,frame_start,frame_end\nv1,book,2,4\nv2,book,,\n")
    assert extraction.load_trims(tmp_path / "index.csv") == {"v1": (2, 4), "v2": (1, -1)}


@pytest.mark.parametrize("rows, message", [
    ("v1,book,0,4", "frame_start must be >= 1"),
    ("v1,book,5,4", "frame_end must be -1 or >= frame_start"),
    ("v1,book,1,4\nv1,book,2,4", "listed twice"),
    ("v1,book,one,4", "integers"),
])
def test_load_trims_refuses_bad_rows(tmp_path, rows, message):
    path = tmp_path / "index.csv"
    path.write_text("video_id,gloss,frame_start,frame_end\n" + rows + "\n")
    with pytest.raises(DataError, match=message):
        extraction.load_trims(path)


def test_unavailable_model_gives_one_clear_line(tmp_path, monkeypatch):
    """Complexity 0 offline: mediapipe's download fails; no network is used here."""
    # ensure_pose_model looks the path up in its own module, so that is where it is replaced
    monkeypatch.setattr(mediapipe_runner, "pose_model_path", lambda c: tmp_path / extraction.POSE_MODELS[c])

    def offline(complexity):
        (tmp_path / extraction.POSE_MODELS[complexity]).write_bytes(b"partial")  # as a broken download would
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(extraction.ModelUnavailableError) as caught:
        extraction.ensure_pose_model(0, download=offline)
    message = str(caught.value)
    assert "\n" not in message
    assert "--model-complexity 0" in message and "pose_landmark_lite.tflite" in message
    assert "Name or service not known" in message and "--model-complexity 1" in message
    assert not (tmp_path / "pose_landmark_lite.tflite").exists()  # no partial model left behind
    (tmp_path / "pose_landmark_heavy.tflite").write_bytes(b"model")
    assert extraction.ensure_pose_model(2, download=offline) == tmp_path / "pose_landmark_heavy.tflite"
    with pytest.raises(UsageError, match="one of"):
        extraction.ensure_pose_model(3)


def test_bundled_model_is_present():
    assert extraction.ensure_pose_model(1, download=pytest.fail) == extraction.pose_model_path(1)


def test_the_package_re_exports_every_public_name_of_its_modules():
    """``datasets.extraction.X`` is the very object its module defines, for every module's ``__all__``."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(extraction.__path__):
        module = importlib.import_module(f"datasets.extraction.{info.name}")
        for name in module.__all__:
            assert getattr(extraction, name) is getattr(module, name), f"{info.name}.{name}"


def test_merge_shards_refuses_missing_and_duplicate(tmp_path):
    header = ",".join(extraction.MANIFEST_COLUMNS)
    row = "v1,10,25.0,4,4,1.0,0.0,0.0,0.4,1,-1"
    (tmp_path / "manifest-0-of-2.csv").write_text(f"{header}\n{row}\n")
    (tmp_path / "failures-0-of-2.csv").write_text("video,reason\n")
    with pytest.raises(UsageError, match="missing manifest-1-of-2.csv, failures-1-of-2.csv "):
        extraction.merge_shards(tmp_path)
    (tmp_path / "manifest-1-of-2.csv").write_text(f"{header}\n{row}\n")
    (tmp_path / "failures-1-of-2.csv").write_text("video,reason\n")
    with pytest.raises(DataError, match="also in shard 0"):
        extraction.merge_shards(tmp_path)
    (tmp_path / "manifest-1-of-3.csv").write_text(f"{header}\n")
    with pytest.raises(UsageError, match="different shard counts"):
        extraction.merge_shards(tmp_path)
