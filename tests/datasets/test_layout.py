import numpy as np
import pytest

from datasets import layout


def test_counts_and_names():
    assert layout.NUM_POINTS == 54 and layout.RAW_FEATURES == 150
    assert len(layout.COLUMN_NAMES) == 108
    assert layout.COLUMN_NAMES[:2] == ("nose_X", "nose_Y")
    assert "indexTip_left_Y" in layout.COLUMN_NAMES and "leftEar_X" in layout.COLUMN_NAMES
    assert len(set(layout.POINT_NAMES)) == 54


def test_raw_to_spoter_copies_the_named_mediapipe_points():
    raw = np.arange(3 * 150, dtype=np.float32).reshape(3, 150) + 1
    points = layout.raw_to_spoter(raw)
    assert points.shape == (3, 54, 2)
    pose = raw.reshape(3, 75, 2)
    assert np.array_equal(points[:, layout.point_index("leftEar")], pose[:, 7])
    assert np.array_equal(points[:, layout.point_index("rightWrist")], pose[:, 16])
    # MediaPipe hand point 8 is the index finger tip; the right hand block starts at raw point 54.
    assert np.array_equal(points[:, layout.point_index("indexTip_right")], pose[:, 54 + 8])
    assert np.array_equal(points[:, layout.point_index("thumbCMC_left")], pose[:, 33 + 1])
    assert np.allclose(points[:, layout.NECK], (pose[:, 11] + pose[:, 12]) / 2)


def test_neck_stays_missing_when_a_shoulder_is_missing():
    raw = np.random.default_rng(0).random((2, 150)).astype(np.float32)
    raw[0, 2 * 11: 2 * 11 + 2] = 0  # left shoulder undetected in frame 0
    points = layout.raw_to_spoter(raw)
    assert np.array_equal(points[0, layout.NECK], [0, 0])
    assert not np.array_equal(points[1, layout.NECK], [0, 0])


def test_missing_hand_stays_missing():
    raw = np.random.default_rng(1).random((4, 150)).astype(np.float32)
    raw[:, layout.RAW_LEFT_HAND_OFFSET * 2: layout.RAW_RIGHT_HAND_OFFSET * 2] = 0
    points = layout.raw_to_spoter(raw)
    assert layout.missing_mask(points[:, layout.LEFT_HAND_SLICE]).all()
    assert not layout.missing_mask(points[:, layout.RIGHT_HAND_SLICE]).any()


def test_mirror_permutation_swaps_twins_and_is_an_involution():
    perm = layout.MIRROR_PERMUTATION
    assert np.array_equal(perm[perm], np.arange(54))
    assert layout.POINT_NAMES[perm[layout.point_index("leftEye")]] == "rightEye"
    assert layout.POINT_NAMES[perm[layout.point_index("wrist_left")]] == "wrist_right"
    assert perm[layout.NOSE] == layout.NOSE and perm[layout.NECK] == layout.NECK


def test_pose_mirror_permutation_swaps_every_left_right_pair_of_the_raw_pose():
    perm = layout.POSE_MIRROR_PERMUTATION
    names = layout.POSE_LANDMARKS
    assert np.array_equal(perm[perm], np.arange(layout.NUM_POSE))
    assert perm[11] == 12 and perm[12] == 11  # left_shoulder <-> right_shoulder
    assert names[perm[names.index("mouth_left")]] == "mouth_right"
    assert names[perm[names.index("left_eye_inner")]] == "right_eye_inner"
    assert perm[layout.POSE_INDEX["nose"]] == layout.POSE_INDEX["nose"]
    moved = [n for n, i in zip(names, perm) if names[i] != n]
    assert len(moved) == layout.NUM_POSE - 1  # everything but the nose has a twin
    assert all(("left" in n) != ("left" in names[perm[names.index(n)]]) for n in moved)


def test_wrong_width_is_refused():
    with pytest.raises(ValueError, match="150"):
        layout.raw_to_spoter(np.zeros((5, 99), np.float32))


def test_layout_spec_is_plain_json():
    import json
    spec = json.loads(json.dumps(layout.layout_spec()))
    assert spec["spoter"]["point_names"] == list(layout.POINT_NAMES)
    assert spec["spoter"]["raw_source_index"][layout.NECK] == -1
