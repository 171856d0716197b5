"""The temporal convolution front-end: identity at init, local in time, padding-blind, counted, configured."""
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from datasets import layout
from models import SpoterConfig, build_model, count_flops_per_sample
from models.temporal_conv import TemporalConvBlock, TemporalConvFrontEnd

SMALL = dict(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=64)
CONV = dict(SMALL, temporal_conv_blocks=2, temporal_conv_kernel=5)


def clips(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, layout.NUM_POINTS, layout.NUM_COORDS, generator=g) - 0.5


def trained_like(module: torch.nn.Module, seed: int = 3) -> torch.nn.Module:
    """Perturb every weight, so that the zero-initialised projection no longer hides the front-end."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return module


def test_untrained_model_with_the_front_end_equals_the_model_without_it():
    torch.manual_seed(0)
    plain = build_model(SpoterConfig(**SMALL)).eval()
    after_plain = torch.rand(3)
    torch.manual_seed(0)
    conv = build_model(SpoterConfig(**CONV)).eval()
    assert torch.equal(torch.rand(3), after_plain)  # the random stream continues as without it
    shared = {k: v for k, v in conv.state_dict().items() if not k.startswith("body.temporal_conv.")}
    assert shared.keys() == plain.state_dict().keys()
    for name, value in plain.state_dict().items():
        assert torch.equal(shared[name], value), name
    x = clips(2, 30)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), plain(x), atol=0, rtol=0)
        trained_like(conv.body.temporal_conv)
        assert (conv(x) - plain(x)).abs().max() > 1e-3  # a trained front-end does change the embedding


@pytest.mark.parametrize("kernel", [3, 5])
def test_a_frame_only_reaches_frames_within_the_receptive_field(kernel):
    blocks = 2
    front = trained_like(TemporalConvFrontEnd(16, blocks, kernel)).eval()
    x = torch.randn(1, 25, 16)
    changed = x.clone()
    changed[0, 12] += torch.randn(16)  # not a constant: the layer norm would remove it
    with torch.no_grad():
        moved = (front(changed) - front(x)).abs().amax(-1)[0]
    reach = blocks * (kernel // 2)
    assert (moved[12 - reach:12 + reach + 1] > 1e-6).all()
    assert torch.equal(moved[:12 - reach], torch.zeros(12 - reach))
    assert torch.equal(moved[12 + reach + 1:], torch.zeros(25 - 13 - reach))


def test_padded_batch_equals_each_clip_alone_and_padding_garbage_does_not_leak():
    model = trained_like(build_model(SpoterConfig(**CONV))).eval()
    lengths = [30, 12, 1]
    singles = [clips(1, n, seed=i) for i, n in enumerate(lengths)]
    x = torch.full((3, 30, layout.NUM_POINTS, layout.NUM_COORDS), float("nan"))
    mask = torch.ones(3, 30, dtype=torch.bool)
    for i, (clip, n) in enumerate(zip(singles, lengths, strict=True)):
        x[i, :n], mask[i, :n] = clip[0], False
    with torch.no_grad():
        batched = model(x, mask)
        assert torch.isfinite(batched).all()
        for i, clip in enumerate(singles):
            torch.testing.assert_close(batched[i], model(clip)[0], atol=1e-5, rtol=1e-5)


def test_backward_reaches_the_front_end():
    model = build_model(SpoterConfig(**CONV)).train()
    model(clips(3, 10)).pow(2).sum().backward()
    front = model.body.temporal_conv.blocks
    # At init only the zero projection receives gradient (the branch output is zero) ...
    assert all(block.project.weight.grad.abs().sum() > 0 for block in front)
    trained_like(model.body.temporal_conv)
    model.zero_grad()
    model(clips(3, 10)).pow(2).sum().backward()
    for name, p in model.body.temporal_conv.named_parameters():  # ... and once it is not, every weight does
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("frames", [1, 30])
def test_flop_count_includes_the_front_end(frames):
    cfg = SpoterConfig(temporal_conv_blocks=2, temporal_conv_kernel=7)
    model = build_model(cfg).eval()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(clips(1, frames))
    assert counter.get_total_flops() == 2 * count_flops_per_sample(cfg, frames)
    assert count_flops_per_sample(cfg, frames) > count_flops_per_sample(SpoterConfig(), frames)


@pytest.mark.parametrize("bad, message", [
    (dict(temporal_conv_kernel=4), "odd"),
    (dict(temporal_conv_kernel=0), "odd"),
    (dict(temporal_conv_blocks=-1), "temporal_conv_blocks"),
    (dict(temporal_conv_blocks=1.5), "temporal_conv_blocks"),
])
def test_invalid_front_end_config_is_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        SpoterConfig(**bad)
    with pytest.raises(ValueError, match="odd"):
        TemporalConvBlock(8, kernel=2)


def test_the_training_flags_reach_the_model_and_bad_ones_are_usage_errors():
    from datasets.errors import UsageError
    from training.cli import config_from_args
    config, _ = config_from_args(["--temporal_conv_blocks", "3", "--temporal-conv-kernel", "9"])
    model_config = config.model_config(num_classes=4)
    assert (model_config["temporal_conv_blocks"], model_config["temporal_conv_kernel"]) == (3, 9)
    assert len(build_model(model_config).body.temporal_conv.blocks) == 3
    with pytest.raises(UsageError, match="odd number of frames"):
        config_from_args(["--temporal_conv_kernel", "4"])[0].check()
