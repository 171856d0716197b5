"""Property-based tests (hypothesis) of the numeric core.

* normalisation and every augmentation: finite output, same shape, undetected points stay
  undetected, for any clip in the coordinate range landmark files hold;
* SPOTER CSV: writing a dataset and reading it back gives the same dataset;
* padding: a padded batch gives every clip the embedding it gets alone.
"""
from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from augmentations import transforms  # noqa: E402
from augmentations.normalization import BODY_VARIANTS, normalize  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.formats import MAX_ABS_COORDINATE  # noqa: E402

EXAMPLES = settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
# MediaPipe's normalised coordinates lie in [0, 1] for points inside the picture and a little
# outside it for points beyond its edges; the loaders accept anything up to MAX_ABS_COORDINATE.
COORD_LIMIT = MAX_ABS_COORDINATE


@st.composite
def clips(draw, max_frames: int = 6, limit: float = COORD_LIMIT) -> np.ndarray:
    """``(T, 54, 2)`` float32 clips: some points undetected (0, 0), some coordinates exactly 0,
    some points piled on one spot (zero-sized boxes), tiny and subnormal values included."""
    frames = draw(st.integers(1, max_frames))
    values = st.floats(-limit, limit, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)
    points = draw(arrays(np.float32, (frames, layout.NUM_POINTS, layout.NUM_COORDS), elements=values))
    missing = draw(arrays(np.bool_, (frames, layout.NUM_POINTS)))
    points[missing] = 0
    if draw(st.booleans()):  # one block (a hand, or the body) collapsed onto a single point
        block = draw(st.sampled_from([layout.BODY_SLICE, *layout.HAND_SLICES]))
        points[:, block] = points[:, block][:, :1]
    return points


def check_core_properties(before: np.ndarray, after: np.ndarray) -> None:
    assert after.shape == before.shape
    assert after.dtype == np.float32
    assert np.isfinite(after).all(), before[~np.isfinite(after).all(-1)]
    assert (after[layout.missing_mask(before)] == 0).all()  # undetected stays undetected


# ------------------------------------------------------------------------------ normalisation
@EXAMPLES
@given(points=clips(), body=st.sampled_from(BODY_VARIANTS), hands=st.booleans())
def test_normalisation_is_finite_keeps_shape_and_missing_points(points, body, hands):
    check_core_properties(points, normalize(points, body, hands))


@EXAMPLES
@given(points=clips(max_frames=3), body=st.sampled_from(BODY_VARIANTS))
def test_normalisation_of_a_batch_is_the_normalisation_of_each_clip(points, body):
    torch = pytest.importorskip("torch")
    batch = np.stack([points, points[::-1].copy()])
    together = normalize(torch.from_numpy(batch), body).numpy()
    np.testing.assert_allclose(together[0], normalize(points, body), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together[1], normalize(points[::-1].copy(), body), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ augmentations
def _augmentations(strength: float) -> dict:
    return {
        "rotate": transforms.Rotate(13.0 * strength),
        "perspective": transforms.Perspective(0.1 * strength),
        "squeeze": transforms.Squeeze(0.15 * strength),
        "arm_joints": transforms.ArmJointRotate(1.0, 4.0 * strength),
        "noise": transforms.GaussianNoise(0.0, 0.001 * strength),
        # the published recipe; mirroring moves points to their twins' slots (tested on its own below)
        "recipe": transforms.spoter_augmentations(1.0, 0.0, 0.001, 0.0, strength),
    }


AUGMENTATION_NAMES = sorted(_augmentations(1.0))


# Augmentations run on raw image coordinates, before normalisation: [0, 1] inside the picture.
@EXAMPLES
@given(points=clips(limit=2.0), name=st.sampled_from(AUGMENTATION_NAMES), strength=st.floats(0.0, 2.0),
       seed=st.integers(0, 2**32 - 1))
def test_augmentations_are_finite_keep_shape_and_missing_points(points, name, strength, seed):
    augment = _augmentations(strength)[name]
    out = augment(points, np.random.default_rng(seed))
    check_core_properties(points, out)
    # and the result still normalises cleanly
    check_core_properties(out, normalize(out))


@EXAMPLES
@given(points=clips(limit=2.0))
def test_mirror_moves_missing_points_with_their_twins_and_is_an_involution(points):
    mirror = transforms.Mirror()
    out = mirror(points)
    assert out.shape == points.shape and np.isfinite(out).all()
    # a missing point's twin slot is missing (a detected point exactly at (1, 0) flips onto the
    # (0, 0) "missing" marker: the marker's one ambiguity, so only this direction is asserted)
    assert layout.missing_mask(out)[layout.missing_mask(points)[:, layout.MIRROR_PERMUTATION]].all()
    # flipping twice gives the clip back wherever the flip kept the point detectable
    twice = mirror(out)
    kept = ~layout.missing_mask(twice)
    np.testing.assert_allclose(twice[kept], points[kept], atol=1e-6)


@EXAMPLES
@given(points=clips(limit=2.0), seed=st.integers(0, 2**32 - 1))
def test_augmentations_are_reproducible_from_their_seed(points, seed):
    recipe = transforms.spoter_augmentations(1.0, 0.0, 0.001, 0.5)
    first = recipe(points, np.random.default_rng(seed))
    np.testing.assert_array_equal(first, recipe(points, np.random.default_rng(seed)))


# -------------------------------------------------------------------------------- SPOTER CSV
# Any text but NUL, which Python's csv module cannot read back (the reader then names the line).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@st.composite
def sequence_sets(draw):
    from datasets.sequences import SequenceSet
    count = draw(st.integers(1, 4))
    classes = draw(st.integers(1, count))
    labels = list(range(classes)) + draw(st.lists(st.integers(0, classes - 1), min_size=count - classes,
                                                  max_size=count - classes))
    names = draw(st.lists(_TEXT, min_size=classes, max_size=classes, unique=True))
    values = st.floats(-MAX_ABS_COORDINATE, MAX_ABS_COORDINATE, width=32, allow_subnormal=True)
    sequences = [draw(arrays(np.float32, (draw(st.integers(1, 4)), layout.NUM_POINTS, layout.NUM_COORDS),
                             elements=values)) for _ in range(count)]
    meta = {key: draw(st.lists(_TEXT, min_size=count, max_size=count)) for key in ("video_ids", "signer_ids", "splits")}
    return SequenceSet.from_sequences(sequences, labels, names, **meta)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(dataset=sequence_sets())
def test_spoter_csv_write_then_read_is_the_identity(dataset, tmp_path):
    from datasets.spoter_csv import read_spoter_csv, write_spoter_csv
    path = tmp_path / "round_trip.csv"
    write_spoter_csv(dataset, path)
    back = read_spoter_csv(path)
    assert back.frames.dtype == np.float32
    np.testing.assert_array_equal(back.frames.view(np.uint32), dataset.frames.view(np.uint32))  # bit for bit
    np.testing.assert_array_equal(back.offsets, dataset.offsets)
    np.testing.assert_array_equal(back.labels, dataset.labels)
    assert back.label_names == dataset.label_names
    for key in ("video_ids", "signer_ids", "splits"):
        assert getattr(back, key).tolist() == getattr(dataset, key).tolist(), key


# ------------------------------------------------------------------------------ padded batches
_MODELS: dict = {}


def tiny_model(positional_encoding: str):
    """A one-layer model per positional encoding, built once (eval mode: no dropout)."""
    if positional_encoding not in _MODELS:
        import torch

        from models.spoter import SpoterConfig, build_model
        torch.manual_seed(0)
        config = SpoterConfig(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32, vector_length=8,
                              positional_encoding=positional_encoding, max_frames=16)
        _MODELS[positional_encoding] = build_model(config).eval()
    return _MODELS[positional_encoding]


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=5), seed=st.integers(0, 2**31 - 1),
       positional_encoding=st.sampled_from(["learned", "sinusoidal", "single"]))
def test_padded_batch_gives_each_clip_its_own_embedding(lengths, seed, positional_encoding):
    torch = pytest.importorskip("torch")
    from augmentations.torch_data import pad_batch
    model = tiny_model(positional_encoding)
    rng = np.random.default_rng(seed)
    clips = [torch.from_numpy(normalize(rng.uniform(0.2, 0.8, (t, layout.NUM_POINTS, 2)).astype(np.float32)))
             for t in lengths]
    landmarks, mask = pad_batch(clips)
    with torch.no_grad():
        batched = model(landmarks, mask)
        alone = torch.cat([model(clip[None]) for clip in clips])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)
    assert torch.isfinite(batched).all()


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(lengths=st.lists(st.integers(1, 12), min_size=2, max_size=6), batch_size=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1))
def test_embedding_in_batches_of_any_size_gives_the_same_embeddings(lengths, batch_size, seed):
    torch = pytest.importorskip("torch")
    from evaluation.embedding import embed_clips
    model = tiny_model("learned")
    rng = np.random.default_rng(seed)
    clips = [torch.from_numpy(normalize(rng.uniform(0.2, 0.8, (t, layout.NUM_POINTS, 2)).astype(np.float32)))
             for t in lengths]
    one_by_one = embed_clips(model, clips, 1, "cpu", False, "test")
    np.testing.assert_allclose(embed_clips(model, clips, batch_size, "cpu", False, "test"), one_by_one,
                               rtol=1e-4, atol=1e-5)
