import numpy as np
import pytest

from augmentations import (ArmJointRotate, Compose, GaussianNoise, Mirror, Perspective, RandomApply, Rotate, Squeeze,
                           spoter_augmentations)
from datasets import layout

ALL = [Rotate(), Perspective(), Squeeze(), ArmJointRotate(1.0), GaussianNoise(), spoter_augmentations(1.0, mirror_probability=0.5)]


@pytest.fixture
def clip():
    rng = np.random.default_rng(3)
    points = rng.uniform(0.2, 0.8, size=(30, 54, 2)).astype(np.float32)
    points[::3, layout.LEFT_HAND_SLICE] = 0
    points[5, layout.NOSE] = 0
    return points


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_shape_dtype_missing_kept_and_seeded(transform, clip):
    a = transform(clip, np.random.default_rng(7))
    b = transform(clip, np.random.default_rng(7))
    assert a.shape == clip.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.isfinite(a).all()
    if not isinstance(transform, Compose):
        assert np.array_equal(layout.missing_mask(a), layout.missing_mask(clip))
        assert not np.array_equal(a, clip)


def test_input_is_not_modified(clip):
    before = clip.copy()
    for transform in ALL:
        transform(clip, np.random.default_rng(0))
    assert np.array_equal(clip, before)


def test_rotation_preserves_distances(clip):
    rotated = Rotate()(clip, np.random.default_rng(1))
    present = ~layout.missing_mask(clip[0])
    d0 = np.linalg.norm(clip[0][present][:, None] - clip[0][present][None], axis=-1)
    d1 = np.linalg.norm(rotated[0][present][:, None] - rotated[0][present][None], axis=-1)
    assert np.allclose(d0, d1, atol=1e-5)


def test_mirror_swaps_hands_and_flips_x(clip):
    mirrored = Mirror()(clip)
    left = clip[:, layout.LEFT_HAND_SLICE]
    right_after = mirrored[:, layout.RIGHT_HAND_SLICE]
    present = ~layout.missing_mask(left)
    assert np.allclose(right_after[present][:, 0], 1 - left[present][:, 0])
    assert np.allclose(right_after[present][:, 1], left[present][:, 1])
    assert np.array_equal(Mirror()(mirrored), clip) or np.allclose(Mirror()(mirrored), clip, atol=1e-6)


def test_arm_rotation_keeps_shoulders_and_moves_hands_rigidly(clip):
    turned = ArmJointRotate(1.0)(clip, np.random.default_rng(5))
    for i in (layout.LEFT_SHOULDER, layout.RIGHT_SHOULDER, layout.NOSE, layout.NECK):
        assert np.array_equal(turned[:, i], clip[:, i])
    hand = layout.RIGHT_HAND_SLICE
    before = np.linalg.norm(clip[:, hand.start] - clip[:, hand.start + 1], axis=-1)
    after = np.linalg.norm(turned[:, hand.start] - turned[:, hand.start + 1], axis=-1)
    assert np.allclose(before, after, atol=1e-5)


def test_random_apply_probability():
    never, always = RandomApply(Rotate(), 0.0), RandomApply(Rotate(), 1.0)
    x = np.full((2, 54, 2), 0.3, np.float32)
    assert np.array_equal(never(x, np.random.default_rng(0)), x)
    assert not np.array_equal(always(x, np.random.default_rng(0)), x)
