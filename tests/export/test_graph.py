"""The streamlined export graph computes what SpoterEmbedding computes, and is dropped when it does not."""
import logging

import onnx
import pytest
import torch
from torch import nn

from datasets import layout
from export import graph
from export.onnx_export import export_validated
from models.spoter import SpoterConfig, build_model

SMALL = {"num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 64}


def trained_like(seed: int = 0, **config) -> nn.Module:
    """Random weights, every tensor distinct (a fresh model's layers are copies of one layer and its
    norms/biases are 1/0, which would hide mix-ups between layers or tensors)."""
    torch.manual_seed(seed)
    model = build_model(SpoterConfig(**{**SMALL, **config})).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.2 if "norm" in name or "bias" in name else 0.02))
    return model


def padded(batch=3, frames=23, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, frames, layout.NUM_POINTS, layout.NUM_COORDS, generator=g) - 0.5
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    mask[1, 9:] = True
    mask[2, 1:] = True
    return x, mask


@pytest.mark.parametrize("config", [
    {},
    {"normalize_embeddings": True},
    {"positional_encoding": "sinusoidal"},
    {"positional_encoding": "single", "vector_length": 16},
    {"hidden_dim": 72, "num_heads": 6},  # input projection 108 -> 72
    {"num_encoder_layers": 1, "num_decoder_layers": 3},
    {"mirror_average": True, "normalize_embeddings": True},
    {"mirror_average": True},
    {"temporal_conv_blocks": 2, "temporal_conv_kernel": 3},
    {"hand_shape_features": True, "temporal_conv_blocks": 1, "mirror_average": True},
])
def test_streamlined_forward_equals_the_model(config):
    model = trained_like(**config)
    fast = graph.streamline(model)
    assert isinstance(fast, graph.StreamlinedSpoter)
    x, mask = padded()
    with torch.no_grad():
        torch.testing.assert_close(fast(x, mask), model(x, mask), atol=2e-6, rtol=0)
        model.body.decoder.layers[-1].self_attn.in_proj_bias[-1] += 0.5  # shares parameters: follows
        torch.testing.assert_close(fast(x, mask), model(x, mask), atol=2e-6, rtol=0)
        # the comparison can fail: different weights show
        other = trained_like(seed=1, **config)
        assert (graph.StreamlinedSpoter(other)(x, mask) - model(x, mask)).abs().max() > 1e-3


def test_unknown_structures_keep_the_model_forward():
    classifier = build_model(SpoterConfig(**SMALL, classification=True, num_classes=4))
    assert graph.streamline(classifier) is classifier
    pre_norm = trained_like()
    pre_norm.body.encoder.layers[0].norm_first = True
    assert "encoder layer" in graph.unsupported_reason(pre_norm)
    assert graph.streamline(pre_norm) is pre_norm
    gelu = trained_like()
    gelu.body.decoder.layers[1].activation = nn.GELU()
    assert "decoder layer" in graph.unsupported_reason(gelu)
    with pytest.raises(ValueError, match="cannot streamline"):
        graph.StreamlinedSpoter(gelu)


@pytest.mark.slow
def test_a_streamlined_graph_that_disagrees_falls_back_to_the_module(monkeypatch, caplog, converted):
    model = trained_like(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64)
    original = graph.StreamlinedSpoter.forward
    monkeypatch.setattr(graph.StreamlinedSpoter, "forward", lambda self, x, m: original(self, x, m) + 1e-3)
    with caplog.at_level(logging.WARNING):
        fallback, table, streamlined = export_validated(model, batches=(1, 3), frames=(1, 17))
    assert not streamlined and table.passed and table.max_abs_diff < 1e-4
    assert "exporting the model's own forward" in caplog.text
    # what streamlining is for: convert.py's export of the same architecture is much smaller
    assert "streamlined" in (converted[0] / "model.json").read_text(encoding="utf-8")
    good = onnx.load(str(converted[0] / "model.onnx"))
    assert len(good.graph.node) < 0.7 * len(fallback.graph.node)
    onnx.checker.check_model(fallback)
