"""Hand-shape features: invariant to hand size, position and rotation; zero when a hand is missing;
identity at init; exported as they are."""
import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from datasets import layout
from models import SpoterConfig, build_model, count_flops_per_sample
from models.hand_geometry import PAIRS, features_per_frame, hand_shape_features

SMALL = dict(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64)


def clips(batch: int = 2, frames: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, layout.NUM_POINTS, layout.NUM_COORDS, generator=g) - 0.5


def rotated(points: torch.Tensor, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return points @ torch.tensor([[c, -s], [s, c]]).T


def test_shape_and_the_pairs_they_measure():
    assert features_per_frame() == 2 * len(PAIRS) == 40
    assert hand_shape_features(clips()).shape == (2, 6, 40)
    names = {name for pair in PAIRS for name in pair}
    assert names <= set(layout.HAND_POINTS) and {"wrist", "thumbTip", "littleTip"} <= names


def test_invariant_to_each_hands_size_position_and_rotation_but_not_to_its_shape():
    x = clips()
    moved = x.clone()
    for i, hand in enumerate(layout.HAND_SLICES):  # each hand its own scale, shift and turn
        moved[..., hand, :] = rotated(x[..., hand, :], 0.7 + i) * (2.5 - i) + torch.tensor([0.3, -0.2 * i])
    torch.testing.assert_close(hand_shape_features(moved), hand_shape_features(x), atol=1e-5, rtol=1e-4)
    curled = x.clone()
    tip = layout.HAND_SLICES[1].start + layout.HAND_POINTS.index("indexTip")
    curled[..., tip, :] += 0.2
    changed = (hand_shape_features(curled) - hand_shape_features(x)).abs() > 1e-4
    assert changed[..., 20:].any() and not changed[..., :20].any()  # right hand only


def test_a_missing_hand_gives_zeros_and_the_other_is_unaffected():
    x = clips()
    x[0, 2, layout.LEFT_HAND_SLICE] = 0
    features = hand_shape_features(x)
    assert torch.equal(features[0, 2, :20], torch.zeros(20))
    assert (features[0, 2, 20:] > 0).all() and (features[0, 3, :20] > 0).all()
    torch.testing.assert_close(features[0, 2, 20:], hand_shape_features(clips())[0, 2, 20:])


def test_glitches_are_bounded_and_finite():
    x = clips()
    x[..., layout.LEFT_HAND_SLICE, :] = 0.1          # every point of the left hand on one spot
    x[0, 0, layout.LEFT_HAND_SLICE.start + 4] = 0.9  # but one: the palm is zero-length
    features = hand_shape_features(x)
    assert torch.isfinite(features).all() and features.max() <= 4.0


def test_untrained_model_with_them_equals_the_model_without_them_and_training_changes_it():
    torch.manual_seed(0)
    plain = build_model(SpoterConfig(**SMALL)).eval()
    torch.manual_seed(0)
    shaped = build_model(SpoterConfig(**SMALL, hand_shape_features=True)).eval()
    x = clips(3, 9)
    with torch.no_grad():
        torch.testing.assert_close(shaped(x), plain(x), atol=0, rtol=0)
    shaped.train()
    shaped(x).pow(2).sum().backward()
    assert shaped.body.hand_shape.proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        shaped.body.hand_shape.proj.weight.normal_()
    assert (shaped.eval()(x) - plain(x)).abs().max() > 1e-3


def test_padded_frames_with_garbage_change_nothing():
    model = build_model(SpoterConfig(**SMALL, hand_shape_features=True)).eval()
    with torch.no_grad():
        model.body.hand_shape.proj.weight.normal_()
    x = clips(2, 10)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[1, 4:] = True
    garbage = x.clone()
    garbage[1, 4:] = float("nan")
    with torch.no_grad():
        out = model(garbage, mask)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[1], model(x[1:2, :4])[0], atol=1e-5, rtol=1e-5)


def test_flop_count_includes_their_linear_map():
    cfg = SpoterConfig(**SMALL, hand_shape_features=True)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        build_model(cfg).eval()(clips(1, 12))
    assert counter.get_total_flops() == 2 * count_flops_per_sample(cfg, 12)


def test_only_on_the_54_point_layout():
    with pytest.raises(ValueError, match="hand_shape_features"):
        SpoterConfig(num_points=20, hidden_dim=40, num_heads=4, hand_shape_features=True)
