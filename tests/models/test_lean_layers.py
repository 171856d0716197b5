"""The lean training kernels compute exactly what the stock layer computes, in less memory."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models.lean_layers as lean
from models import SpoterConfig, build_model
from models.lean_layers import AttentionWithDropout, LeanEncoderLayer, ReluDropout


def reference_attention(q, k, v, additive, keep, p):
    probs = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5 + additive, dim=-1)
    return (probs * keep / (1 - p)) @ v


def test_attention_with_dropout_matches_autograd_reference():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 7, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    additive = torch.zeros(3, 1, 1, 7, dtype=torch.float64)
    additive[1, ..., 4:] = float("-inf")  # a padded clip
    keep = torch.rand(3, 2, 7, 7) >= 0.3
    grad = torch.randn(3, 2, 7, 4, dtype=torch.float64)
    ours = AttentionWithDropout.apply(q, k, v, additive, keep, 0.3)
    ours_grads = torch.autograd.grad(ours, (q, k, v), grad)
    expected = reference_attention(q, k, v, additive, keep, 0.3)
    expected_grads = torch.autograd.grad(expected, (q, k, v), grad)
    torch.testing.assert_close(ours, expected)
    for a, b in zip(ours_grads, expected_grads):
        torch.testing.assert_close(a, b)


def test_relu_dropout_matches_autograd_reference():
    torch.manual_seed(1)
    x = torch.randn(4, 5, 16, dtype=torch.float64, requires_grad=True)
    keep = torch.rand(4, 5, 16) >= 0.2
    grad = torch.randn(4, 5, 16, dtype=torch.float64)
    ours = ReluDropout.apply(x, keep, 0.2)
    expected = F.relu(x) * keep / 0.8
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(expected, x, grad)[0])


def make_pair(dropout=0.2):
    torch.manual_seed(2)
    stock = nn.TransformerEncoderLayer(12, 3, 32, dropout, batch_first=True)
    ours = LeanEncoderLayer(12, 3, 32, dropout, batch_first=True)
    ours.load_state_dict(stock.state_dict())
    return stock, ours


def test_same_parameters_and_eval_output_as_the_stock_layer():
    stock, ours = make_pair()
    assert list(stock.state_dict()) == list(ours.state_dict())
    x = torch.randn(2, 9, 12)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, 5:] = True
    stock.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x, src_key_padding_mask=mask), stock(x, src_key_padding_mask=mask),
                                   rtol=0, atol=0)


@pytest.mark.parametrize("float_mask", [False, True])
def test_training_forward_and_backward_equal_the_stock_layer_with_the_same_dropout_masks(monkeypatch, float_mask):
    """Draw the lean layer's masks, then replay them through the stock maths written out."""
    stock, ours = make_pair(dropout=0.25)
    ours.dropout1.p = ours.dropout2.p = 0.0  # residual dropouts are stock nn.Dropout: take them out of play
    drawn = []
    real_draw = lean.draw_keep_mask
    monkeypatch.setattr(lean, "draw_keep_mask", lambda *a, **k: drawn.append(real_draw(*a, **k)) or drawn[-1])
    x = torch.randn(2, 9, 12, requires_grad=True)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0, 6:] = True
    key_mask = torch.zeros(2, 9).masked_fill(mask, float("-inf")) if float_mask else mask
    ours.train()
    out = ours(x, src_key_padding_mask=key_mask)
    attention_keep, ffn_keep = drawn

    weights = dict(stock.named_parameters())
    q, k, v = F.linear(x, weights["self_attn.in_proj_weight"], weights["self_attn.in_proj_bias"]).chunk(3, -1)
    q, k, v = (t.reshape(2, 9, 3, 4).transpose(1, 2) for t in (q, k, v))
    additive = torch.zeros(2, 1, 1, 9).masked_fill(mask[:, None, None, :], float("-inf"))
    attended = reference_attention(q, k, v, additive, attention_keep, 0.25).transpose(1, 2).reshape(2, 9, 12)
    h = stock.norm1(x + stock.self_attn.out_proj(attended))
    expected = stock.norm2(h + stock.linear2(F.relu(stock.linear1(h)) * ffn_keep / 0.75))
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, grad)[0], torch.autograd.grad(expected, x, grad)[0])


def saved_megabytes(model, clips, mask) -> float:
    storages = {}

    def keep(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(clips, mask)
    return sum(storages.values()) / 2**20


def test_training_with_dropout_keeps_far_fewer_tensors_than_the_stock_layers():
    config = SpoterConfig(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=512, dropout=0.2)
    torch.manual_seed(3)
    model = build_model(config).train()
    stock = build_model(config).train()
    for layer_index, layer in enumerate(stock.body.encoder.layers):  # same weights, stock layer class
        replacement = nn.TransformerEncoderLayer(108, 9, 512, 0.2, batch_first=True)
        replacement.load_state_dict(layer.state_dict())
        stock.body.encoder.layers[layer_index] = replacement
    clips = torch.randn(8, 64, 54, 2)
    mask = torch.zeros(8, 64, dtype=torch.bool)
    lean_mb, stock_mb = saved_megabytes(model, clips, mask), saved_megabytes(stock, clips, mask)
    assert lean_mb < 0.55 * stock_mb, (lean_mb, stock_mb)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.2, 0.25, 0.5, 1.0])
def test_keep_masks_keep_one_minus_p_of_the_entries_and_repeat_with_the_seed(p):
    torch.manual_seed(0)
    keep = lean.draw_keep_mask((301, 1001), p)  # 301,301 entries: not a multiple of the 4 lanes a word gives
    assert keep.shape == (301, 1001) and keep.dtype == torch.bool
    assert abs(keep.float().mean().item() - (1 - p)) < 0.003
    assert abs(lean.dropout_probability(p) - p) < 8e-6
    torch.manual_seed(0)
    assert torch.equal(keep, lean.draw_keep_mask((301, 1001), p))
    if 0 < p < 1:  # the lanes are independent: neighbouring entries agree as often as chance says
        agree = (keep[:, 1:] == keep[:, :-1]).float().mean().item()
        assert abs(agree - (p * p + (1 - p) * (1 - p))) < 0.005


def test_relu_dropout_is_unbiased_with_the_realised_probability():
    torch.manual_seed(1)
    x = torch.rand(2000, 500) + 0.5
    p = 0.1
    out = lean.ReluDropout.apply(x, lean.draw_keep_mask(x.shape, p), lean.dropout_probability(p))
    assert abs((out.sum() / x.sum()).item() - 1) < 0.002
    assert lean.dropout_probability(0.1) != 0.1 and lean.dropout_probability(0.25) == 0.25
