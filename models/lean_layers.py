"""A transformer encoder layer that trains with dropout in about half the memory and time.

On CPU, ``nn.MultiheadAttention`` with attention dropout cannot use the fused attention
kernel: the math path keeps the (B, heads, T, T) attention probabilities and their dropped
copy for the backward pass, and the feed-forward block keeps both the ReLU output and its
dropped copy (B, T, 2048). With the published architecture at 120 frames and batch 32 that
is 1.0 GB of saved tensors instead of 0.3 GB without dropout (``bench/bench_model.py``).

:class:`LeanEncoderLayer` is ``nn.TransformerEncoderLayer`` (same parameters, same
state_dict, same maths and dropout placement) with two training-only kernels:

* attention with dropout that keeps q, k, v and a bool keep-mask, and recomputes the
  probabilities in the backward pass (cheap: T x T x head_dim per head);
* ReLU + dropout as one step whose output is all the backward pass needs
  (``grad * (out > 0) / (1 - p)``), shared with the next linear layer's saved input.

Both draw their dropout masks from 16-bit random lanes (:func:`draw_keep_mask`), four
mask entries per 64-bit random word instead of one float each: the drop probability is
``p`` rounded to a multiple of 1/65536 and the scale follows it, so the layer stays unbiased.

In eval mode, without dropout, or with options these kernels do not cover, it runs the
stock layer, so inference and ONNX export are unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


_LANE_VALUES = 1 << 16  # a keep mask compares 16-bit random lanes with a threshold


def dropout_probability(p: float) -> float:
    """The drop probability :func:`draw_keep_mask` realises: ``p`` rounded to a multiple of
    1/65536 (off by less than 8e-6); the kernels scale by ``1 / (1 - this)``, so the
    expected output equals the input exactly."""
    return round(p * _LANE_VALUES) / _LANE_VALUES


def draw_keep_mask(shape, p: float, device=None) -> torch.Tensor:
    """Bool mask, True with probability ``1 - dropout_probability(p)``.

    Each 64-bit random word gives four mask entries (its four 16-bit lanes, each compared
    with a threshold), a quarter of the words ``torch.rand(shape) >= p`` draws and no float
    conversion: on CPU the mask of a (32, 128, 2048) feed-forward block costs about a
    quarter of the time. Drawn from torch's global generator, so seeded runs repeat.
    """
    threshold = round(p * _LANE_VALUES) - _LANE_VALUES // 2
    if threshold >= _LANE_VALUES // 2:  # p ~ 1: nothing kept (the threshold would not fit in 16 bits)
        return torch.zeros(shape, dtype=torch.bool, device=device)
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), (1 << 63) - 1)
    lanes = words.view(torch.int16)[:count].view(shape)
    return lanes >= threshold


class AttentionWithDropout(torch.autograd.Function):
    """softmax(q k^T * scale + mask) with dropout, times v; q, k, v: (B, H, T, d); mask: additive, broadcastable.

    Mixed precision: under autocast, q, k and v arrive in the low-precision dtype (fp16 on
    CUDA, bf16 on CPU) while the backward pass runs outside autocast. Both passes therefore
    cast explicitly, the way autocast itself would: the two matrix products per pass run
    in the inputs' dtype, scores, softmax and the softmax gradient in (at least) float32, and every
    gradient leaves in the dtype of the tensor it belongs to.
    """

    @staticmethod
    def _probabilities(q, k, additive_mask, scale):
        wide = torch.promote_types(q.dtype, torch.float32)  # float32 for fp16/bf16, float64 stays
        scores = torch.matmul(q, k.transpose(-2, -1)).to(wide) * scale + additive_mask.to(wide)
        return torch.softmax(scores, dim=-1)

    @staticmethod
    def forward(ctx, q, k, v, additive_mask, keep, p: float):
        scale = 1.0 / math.sqrt(q.shape[-1])
        with torch.autocast(q.device.type, enabled=False):
            probs = AttentionWithDropout._probabilities(q, k, additive_mask, scale)
            dropped = (probs * keep / (1.0 - p)).to(v.dtype)
            out = torch.matmul(dropped, v)
        ctx.save_for_backward(q, k, v, additive_mask, keep)
        ctx.scale, ctx.p = scale, p
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, additive_mask, keep = ctx.saved_tensors
        scale, factor = ctx.scale, 1.0 / (1.0 - ctx.p)
        with torch.autocast(q.device.type, enabled=False):
            grad_out = grad_out.to(v.dtype)
            probs = AttentionWithDropout._probabilities(q, k, additive_mask, scale)
            grad_v = torch.matmul((probs * keep * factor).to(v.dtype).transpose(-2, -1), grad_out)
            grad_probs = torch.matmul(grad_out, v.transpose(-2, -1)).to(probs.dtype) * keep * factor
            grad_scores = probs * (grad_probs - (grad_probs * probs).sum(dim=-1, keepdim=True))
            grad_q = torch.matmul(grad_scores.to(k.dtype), k) * scale
            grad_k = torch.matmul(grad_scores.to(q.dtype).transpose(-2, -1), q) * scale
        return grad_q.to(q.dtype), grad_k.to(k.dtype), grad_v, None, None, None


class ReluDropout(torch.autograd.Function):
    """relu(x) * keep / (1 - p), saving only its output (gradients leave in x's dtype)."""

    @staticmethod
    def forward(ctx, x, keep, p: float):
        out = x.clamp_min(0.0) * keep / (1.0 - p)
        ctx.save_for_backward(out)
        ctx.p = p
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return (grad_out * (out > 0) / (1.0 - ctx.p)).to(out.dtype), None, None


class LeanEncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` with memory-lean training kernels (see the module doc)."""

    def _lean_attention(self) -> bool:
        attn = self.self_attn
        return (self.training and attn.dropout > 0 and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
                and attn.bias_k is None and not attn.add_zero_attn)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool = False):
        if attn_mask is not None or is_causal or not self._lean_attention():
            return super()._sa_block(x, attn_mask, key_padding_mask, is_causal=is_causal)
        attn = self.self_attn
        batch_first_x = x if self.self_attn.batch_first else x.transpose(0, 1)  # (B, T, D)
        batch, frames, width = batch_first_x.shape
        heads = attn.num_heads
        q, k, v = F.linear(batch_first_x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(batch, frames, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        if key_padding_mask is None:
            additive = x.new_zeros(batch, 1, 1, frames)
        elif key_padding_mask.dtype == torch.bool:
            additive = x.new_zeros(batch, 1, 1, frames).masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        else:  # the encoder hands layers an additive float mask (0 / -inf)
            additive = key_padding_mask[:, None, None, :].to(x.dtype)
        keep = draw_keep_mask((batch, heads, frames, frames), attn.dropout, x.device)
        out = AttentionWithDropout.apply(q, k, v, additive, keep, dropout_probability(attn.dropout))  # (B, H, T, d)
        out = attn.out_proj(out.transpose(1, 2).reshape(batch, frames, width))
        if not self.self_attn.batch_first:
            out = out.transpose(0, 1)
        return self.dropout1(out)

    def _ff_block(self, x):
        p = self.dropout.p
        if not (self.training and p > 0 and self.activation is F.relu):
            return super()._ff_block(x)
        hidden = self.linear1(x)
        hidden = ReluDropout.apply(hidden, draw_keep_mask(hidden.shape, p, hidden.device), dropout_probability(p))
        return self.dropout2(self.linear2(hidden))
