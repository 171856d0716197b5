"""Augmentations that simulate new people: re-timing (TimeWarp) and lost hands (HandDropout)."""
import numpy as np
import pytest

from augmentations import HandDropout, TimeWarp, spoter_augmentations
from datasets import layout


@pytest.fixture
def clip():
    rng = np.random.default_rng(3)
    points = rng.uniform(0.2, 0.8, size=(30, 54, 2)).astype(np.float32)
    points[::4, layout.LEFT_HAND_SLICE] = 0
    return points


def ramp(frames: int = 30) -> np.ndarray:
    """Every point's x is its frame number: the output's x then reads the moment each frame shows."""
    points = np.ones((frames, 54, 2), np.float32)
    points[..., 0] = np.arange(frames, dtype=np.float32)[:, None] + 1  # +1: frame 0 is not "undetected"
    return points


@pytest.mark.parametrize("transform", [TimeWarp(), HandDropout()], ids=lambda t: type(t).__name__)
def test_seeded_same_shape_and_input_untouched(transform, clip):
    before = clip.copy()
    a, b = transform(clip, np.random.default_rng(7)), transform(clip, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.shape == clip.shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert not np.array_equal(a, clip)
    assert np.array_equal(clip, before)


def test_time_warp_without_range_is_the_identity(clip):
    assert np.array_equal(TimeWarp(0.0, 0.0)(clip, np.random.default_rng(0)), clip)


def test_time_warp_runs_forward_within_the_clip_and_varies():
    moments = []
    for seed in range(50):
        shown = TimeWarp()(ramp(), np.random.default_rng(seed))[:, 0, 0] - 1
        assert np.all(np.diff(shown) >= -1e-5)            # time never runs backwards
        assert shown.min() >= 0 and shown.max() <= 29     # only moments of the clip
        moments.append(shown)
    moments = np.array(moments)
    assert moments[:, 15].std() > 0.5                     # the middle moves: rhythm changes, not only speed
    assert (moments[:, -1] < 28.5).any() and (moments[:, 0] > 0.5).any()  # faster and slower: edges move in


def test_time_warp_never_blends_a_point_with_an_undetected_one():
    points = np.ones((30, 54, 2), np.float32)
    points[10:13, layout.RIGHT_HAND_SLICE] = 0
    for seed in range(30):
        out = TimeWarp()(points, np.random.default_rng(seed))
        assert set(np.unique(out).tolist()) <= {0.0, 1.0}  # copied from a frame, never halfway to (0, 0)


def test_hand_dropout_hides_one_hand_over_one_stretch():
    clip = np.random.default_rng(3).uniform(0.2, 0.8, size=(30, 54, 2)).astype(np.float32)  # all detected
    hands_hidden, lengths = set(), set()
    for seed in range(40):
        out = HandDropout(min_share=0.2)(clip, np.random.default_rng(seed))
        changed = np.any(out != clip, axis=-1)                                # (T, 54)
        touched = [i for i, h in enumerate(layout.HAND_SLICES) if changed[:, h].any()]
        assert len(touched) == 1 and not changed[:, layout.BODY_SLICE].any()  # one hand, no body point
        hand = layout.HAND_SLICES[touched[0]]
        frames = np.flatnonzero(changed[:, hand].any(-1))
        assert np.array_equal(frames, np.arange(frames[0], frames[-1] + 1))  # one stretch of frames
        assert frames.size >= 6                                               # at least 20 % of 30
        assert np.all(out[frames][:, hand] == 0)                              # "not detected", whole hand
        hands_hidden.add(touched[0])
        lengths.add(frames.size)
    assert hands_hidden == {0, 1} and len(lengths) > 5 and max(lengths) > 20


def test_the_training_flags_add_them_to_the_training_augmentations(clip):
    plain = spoter_augmentations(0.0, gaussian_std=0.0)
    assert np.array_equal(plain(clip, np.random.default_rng(1)), clip)
    warped = spoter_augmentations(0.0, gaussian_std=0.0, time_warp_probability=1.0)(clip, np.random.default_rng(1))
    assert not np.array_equal(warped, clip)
    dropped = spoter_augmentations(0.0, gaussian_std=0.0, hand_dropout_probability=1.0)(clip, np.random.default_rng(1))
    assert layout.missing_mask(dropped).sum() > layout.missing_mask(clip).sum()
