"""Vectorised normalisation against a slow per-frame reference written here."""
import math

import numpy as np
import pytest
import torch

from augmentations.normalization import normalize
from datasets import layout


def _reference_hand(hand):
    out = np.zeros_like(hand)
    present = [i for i in range(len(hand)) if not (hand[i, 0] == 0 and hand[i, 1] == 0)]
    if not present:
        return out
    xs, ys = [hand[i, 0] for i in present], [hand[i, 1] for i in present]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    if width > height:
        dx = 0.1 * width
        dy = dx + (width - height) / 2
    else:
        dy = 0.1 * height
        dx = dy + (height - width) / 2
    sx, sy = min(xs) - dx, min(ys) - dy
    ex, ey = max(xs) + dx, max(ys) + dy
    if ex - sx == 0 or ey - sy == 0:
        return out
    for i in present:
        out[i] = ((hand[i, 0] - sx) / (ex - sx) - 0.5, (hand[i, 1] - sy) / (ey - sy) - 0.5)
    return out


def _present(p):
    return not (p[0] == 0 and p[1] == 0)


def _reference_body_centered(frame):
    out = np.zeros((layout.NUM_BODY, 2), np.float32)
    ls, rs = frame[layout.LEFT_SHOULDER], frame[layout.RIGHT_SHOULDER]
    neck, nose = frame[layout.NECK], frame[layout.NOSE]
    if _present(ls) and _present(rs):
        head = math.dist(ls, rs)
    elif _present(neck) and _present(nose):
        head = math.dist(neck, nose)
    else:
        return out
    if head == 0:
        return out
    eyes = [frame[i][1] for i in (layout.LEFT_EYE, layout.RIGHT_EYE) if _present(frame[i])]
    eye_y = sum(eyes) / len(eyes) if eyes else neck[1] - head
    left, top, size = neck[0] - 3 * head, eye_y - head / 2, 6 * head
    for i in range(layout.NUM_BODY):
        if _present(frame[i]):
            out[i] = ((frame[i][0] - left) / size - 0.5, (frame[i][1] - top) / size - 0.5)
    return out


def _reference(frames):
    out = np.zeros_like(frames)
    for t, frame in enumerate(frames):
        out[t, layout.BODY_SLICE] = _reference_body_centered(frame)
        for s in layout.HAND_SLICES:
            out[t, s] = _reference_hand(frame[s])
    return out


def _random_frames(rng, n=40):
    frames = rng.uniform(0.2, 0.8, size=(n, 54, 2)).astype(np.float32)
    frames[:, layout.NECK] = (frames[:, layout.LEFT_SHOULDER] + frames[:, layout.RIGHT_SHOULDER]) / 2
    frames[rng.random(n) < 0.3, layout.LEFT_HAND_SLICE] = 0          # hand not detected
    frames[rng.random(n) < 0.1, layout.LEFT_SHOULDER] = 0            # shoulder missing: neck-nose fallback
    frames[rng.random(n) < 0.05, layout.BODY_SLICE] = 0              # no body at all
    frames[rng.random(n) < 0.1, layout.RIGHT_HAND_SLICE] = frames[0, layout.RIGHT_HAND_SLICE.start]  # degenerate box
    frames[rng.random((n, 54)) < 0.02] = 0                           # scattered missing points
    return frames


def test_matches_reference_on_random_frames():
    rng = np.random.default_rng(0)
    frames = _random_frames(rng)
    assert np.allclose(normalize(frames), _reference(frames), atol=1e-5)


def test_numpy_and_torch_agree_and_batch_shape_is_kept():
    frames = _random_frames(np.random.default_rng(1)).reshape(2, 20, 54, 2)
    a = normalize(frames)
    b = normalize(torch.from_numpy(frames)).numpy()
    assert a.shape == frames.shape and np.abs(a - b).max() < 1e-6


@pytest.mark.parametrize("body", ["centered", "spoter"])
def test_missing_stays_missing_and_no_nan(body):
    frames = _random_frames(np.random.default_rng(2))
    out = normalize(frames, body)
    assert np.isfinite(out).all()
    assert (out[layout.missing_mask(frames)] == 0).all()


def test_all_zero_input_gives_zeros():
    assert (normalize(np.zeros((3, 54, 2), np.float32)) == 0).all()


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown body normalisation"):
        normalize(np.zeros((1, 54, 2), np.float32), body="bogus")


def test_real_dev_normalises_cleanly(real_dev_dir):
    from datasets.landmark_folder import read_landmark_folder
    data, report = read_landmark_folder(real_dev_dir / "landmarks", real_dev_dir / "index.json")
    assert len(data) == 900 and not report.skipped
    assert len(set(data.signer_ids)) == 13
    out = normalize(data.frames)
    assert np.isfinite(out).all()
    hands = out[:, layout.LEFT_HAND_SLICE.start:]
    # Every detected hand point lies inside its (padded, centred) box.
    assert np.abs(hands).max() <= 0.5 + 1e-6
    present = ~layout.missing_mask(data.frames[:, layout.LEFT_HAND_SLICE.start:])
    assert np.abs(hands[present]).max(axis=-1).mean() > 0.1  # real spread, not collapsed to 0
