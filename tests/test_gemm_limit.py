"""The in-run yardstick of the benchmarks: exact FLOP counts from frame counts, and a sane limit."""
from __future__ import annotations

import torch

from augmentations.torch_data import FrameCount, pad_batch
from bench.gemm_limit import epoch_flops, gemm_limit, model_products, quadratic_macs
from models import SpoterConfig, count_flops_per_sample


def test_frame_count_gives_the_padding_share_of_the_batches():
    count = FrameCount()
    _, mask = pad_batch([torch.zeros(t, 54, 2) for t in (10, 30, 20)])
    count.add(mask)
    _, mask = pad_batch([torch.zeros(t, 54, 2) for t in (5, 5)])
    count.add(mask)
    figures = count.metrics()
    assert figures["real_frames"] == 70 and figures["padded_frames"] == 3 * 30 + 2 * 5
    assert figures["real_frames_squared"] == 100 + 900 + 400 + 25 + 25
    assert figures["padded_frames_squared"] == 3 * 900 + 2 * 25
    assert abs(figures["padding_share"] - (1 - 70 / 100)) < 1e-12


def test_epoch_flops_equal_the_per_clip_count_summed_over_real_and_padded_lengths():
    config = SpoterConfig(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=64, hidden_dim=108)
    lengths, width = [12, 40, 33], 40
    count = FrameCount()
    _, mask = pad_batch([torch.zeros(t, 54, 2) for t in lengths])
    count.add(mask)
    epoch = {**count.metrics(), "samples_per_s": 1.5, "train_seconds": 2.0}  # 3 clips
    assert epoch_flops(config, epoch) == 6 * sum(count_flops_per_sample(config, t) for t in lengths)
    assert epoch_flops(config, epoch, padded=True) == 6 * 3 * count_flops_per_sample(config, width)


def test_the_flop_count_is_a_quadratic_in_frames_with_an_attention_term():
    c0, c1, c2 = quadratic_macs(SpoterConfig())
    assert c2 > 0 and c1 > c2
    assert c0 + 100 * c1 + 100**2 * c2 == count_flops_per_sample(SpoterConfig(), 100)


def test_the_limit_times_every_encoder_product_and_is_a_positive_rate():
    config = SpoterConfig(num_encoder_layers=1, dim_feedforward=64)
    assert set(model_products(config, 8)) == {"qkv_projection", "output_projection", "feed_forward_in",
                                              "feed_forward_out"}
    limit = gemm_limit(config, batch=2, frames=8, repeats=1)
    rates = [shape["forward_gflop_per_s"] for shape in limit["shapes"].values()]
    assert min(rates) <= limit["forward_limit_gflop_per_s"] <= max(rates)  # a weighted harmonic mean
    assert limit["train_step_limit_gflop_per_s"] > 0 and limit["rows"] == 16
