"""SPOTER model: config round trip, shapes, padding invariance, positional encodings, FLOP count."""
from dataclasses import asdict

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from datasets import layout
from models import (
    SpoterClassifier,
    SpoterConfig,
    SpoterEmbedding,
    build_model,
    count_flops_per_sample,
)

SMALL = dict(num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64)


def clips(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, layout.NUM_POINTS, layout.NUM_COORDS, generator=g)


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Clips of the given lengths, zero-padded to the longest, plus the (B, T) padding mask."""
    singles = [clips(1, n, seed + i) for i, n in enumerate(lengths)]
    t = max(lengths)
    x = torch.zeros(len(lengths), t, layout.NUM_POINTS, layout.NUM_COORDS)
    mask = torch.ones(len(lengths), t, dtype=torch.bool)
    for i, (clip, n) in enumerate(zip(singles, lengths, strict=True)):
        x[i, :n] = clip[0]
        mask[i, :n] = False
    return x, mask, singles


def test_default_config_matches_published_sizes():
    cfg = SpoterConfig()
    assert cfg.num_points == layout.NUM_POINTS
    assert cfg.hidden_dim == layout.NUM_POINTS * layout.NUM_COORDS == 108
    assert (cfg.num_heads, cfg.num_encoder_layers, cfg.num_decoder_layers) == (9, 6, 6)
    assert (cfg.dim_feedforward, cfg.vector_length, cfg.max_frames) == (2048, 32, 512)
    assert cfg.positional_encoding == "learned" and not cfg.classification
    model = build_model(cfg)
    assert isinstance(model.body.input_proj, torch.nn.Identity)  # d_model = 108 needs no projection


def test_config_round_trips_through_asdict_and_rebuilds_identical_model():
    cfg = SpoterConfig(**SMALL, vector_length=16, positional_encoding="sinusoidal")
    d = asdict(cfg)
    assert SpoterConfig(**d) == cfg
    model = build_model(d).eval()
    clone = build_model(SpoterConfig(**d)).eval()
    clone.load_state_dict(model.state_dict())
    x = clips(2, 9)
    torch.testing.assert_close(model(x), clone(x))


@pytest.mark.parametrize("bad, message", [
    (dict(num_heads=7), "divisible"),
    (dict(positional_encoding="rope"), "positional_encoding"),
    (dict(classification=True), "num_classes"),
    (dict(dropout=1.0), "dropout"),
    (dict(vector_length=0), "vector_length"),
])
def test_invalid_config_is_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        SpoterConfig(**bad)


def test_build_model_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError, match="hidden_size"):
        build_model({"hidden_size": 64, "num_heads": 4})


def test_build_model_picks_head_from_config():
    emb = build_model(dict(SMALL, vector_length=12))
    clf = build_model(dict(SMALL, classification=True, num_classes=5))
    assert isinstance(emb, SpoterEmbedding) and isinstance(clf, SpoterClassifier)
    x = clips(3, 7)
    assert emb(x).shape == (3, 12)
    assert clf(x).shape == (3, 5)
    # One shared body implementation, not two copies.
    assert type(emb.body) is type(clf.body)


def test_input_projection_when_hidden_dim_differs():
    model = build_model(dict(SMALL, hidden_dim=64, num_heads=4)).eval()
    assert isinstance(model.body.input_proj, torch.nn.Linear)
    assert model.body.input_proj.in_features == layout.NUM_POINTS * layout.NUM_COORDS
    assert model(clips(2, 5)).shape == (2, 32)


def test_normalized_embeddings_have_unit_length():
    model = build_model(dict(SMALL, normalize_embeddings=True)).eval()
    with torch.no_grad():
        e = model(clips(4, 6))
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4), atol=1e-5, rtol=0)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_padded_batch_equals_each_clip_alone_default_model(grad):
    model = build_model(SpoterConfig()).eval()
    x, mask, singles = padded_batch([5, 17, 11, 1])
    with torch.set_grad_enabled(grad):
        batched = model(x, mask)
        for i, clip in enumerate(singles):
            torch.testing.assert_close(batched[i], model(clip)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pe", ["learned", "sinusoidal", "single"])
def test_padded_batch_equals_each_clip_alone_per_positional_encoding(pe):
    model = build_model(dict(SMALL, positional_encoding=pe, classification=True, num_classes=4)).eval()
    x, mask, singles = padded_batch([8, 3, 6], seed=5)
    with torch.no_grad():
        batched = model(x, mask)
        for i, clip in enumerate(singles):
            torch.testing.assert_close(batched[i], model(clip)[0], atol=1e-5, rtol=1e-5)


def test_garbage_in_padded_frames_does_not_leak():
    model = build_model(SMALL).eval()
    x, mask, _ = padded_batch([4, 9])
    clean = model(x, mask)
    x[mask] = float("nan")
    torch.testing.assert_close(model(x, mask), clean)


def test_no_mask_equals_all_false_mask():
    model = build_model(SMALL).eval()
    x = clips(2, 6)
    torch.testing.assert_close(model(x), model(x, torch.zeros(2, 6, dtype=torch.bool)))


def test_single_vector_encoding_is_blind_to_frame_order_and_learned_is_not():
    x = clips(1, 10, seed=3)
    reversed_x = x.flip(1)
    single = build_model(dict(SMALL, positional_encoding="single")).eval()
    learned = build_model(dict(SMALL, positional_encoding="learned")).eval()
    sinus = build_model(dict(SMALL, positional_encoding="sinusoidal")).eval()
    with torch.no_grad():
        torch.testing.assert_close(single(x), single(reversed_x), atol=1e-5, rtol=1e-5)
        # A learned table starts tiny (std 0.02); make it matter so the check is meaningful.
        learned.body.pos_encoding.table.normal_()
        assert (learned(x) - learned(reversed_x)).abs().max() > 1e-3
        assert (sinus(x) - sinus(reversed_x)).abs().max() > 1e-3


def test_learned_table_limit_is_a_clear_error_and_sinusoidal_has_none():
    learned = build_model(dict(SMALL, max_frames=16)).eval()
    assert learned(clips(1, 16)).shape == (1, 32)
    with pytest.raises(ValueError, match="max_frames=16"):
        learned(clips(1, 17))
    sinus = build_model(dict(SMALL, max_frames=16, positional_encoding="sinusoidal")).eval()
    assert torch.isfinite(sinus(clips(1, 40))).all()


@pytest.mark.parametrize("make_inputs, message", [
    (lambda: (torch.rand(2, 5, layout.NUM_POINTS, 3), None), "shape"),
    (lambda: (torch.rand(5, layout.NUM_POINTS, 2), None), "shape"),
    (lambda: (clips(2, 5), torch.zeros(2, 5)), "bool"),
    (lambda: (clips(2, 5), torch.zeros(2, 4, dtype=torch.bool)), "does not match"),
    (lambda: (clips(2, 5), torch.tensor([[False] * 5, [True] * 5])), r"row\(s\): \[1\]"),
])
def test_bad_inputs_are_clear_errors(make_inputs, message):
    model = build_model(SMALL)
    x, mask = make_inputs()
    with pytest.raises(ValueError, match=message):
        model(x, mask)


def test_backward_reaches_every_parameter_with_padding():
    model = build_model(dict(SMALL, hidden_dim=36, num_heads=6)).train()
    x, mask, _ = padded_batch([3, 7, 5])
    model(x, mask).pow(2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cfg", [
    SpoterConfig(),
    SpoterConfig(hidden_dim=64, num_heads=4, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=100,
                 classification=True, num_classes=7),
], ids=["default", "projected-classifier"])
@pytest.mark.parametrize("frames", [1, 37])
def test_flop_count_matches_torch_flop_counter(cfg, frames):
    model = build_model(cfg).eval()
    # The math SDPA backend decomposes attention into matmuls the counter sees (the
    # counter needs autograd enabled).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(clips(1, frames))
    assert counter.get_total_flops() == 2 * count_flops_per_sample(cfg, frames)


def test_flop_count_grows_quadratically_in_frames_for_attention_only():
    cfg = SpoterConfig()
    f = [count_flops_per_sample(asdict(cfg), t) for t in (10, 20, 30)]
    second_difference = f[2] - 2 * f[1] + f[0]
    # Only the encoder's T^2 terms (2 * T^2 * D per layer) bend the curve.
    assert second_difference == cfg.num_encoder_layers * 2 * cfg.hidden_dim * 2 * 10 ** 2
