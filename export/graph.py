"""A leaner forward pass of the same trained model, used only for export.

``nn.MultiheadAttention`` exports as a long chain of reshapes, transposes, squeezes and
shape arithmetic (about half of the ~870 ONNX nodes of the default model); every node
costs dispatch time in onnxruntime, and more so in onnxruntime-web. This module runs
the same parameters through the same maths with fewer ops:

* frames as rows of one ``(B*T, D)`` matrix, so each linear is one Gemm with fused
  bias; packed Q/K/V projection, one ``unflatten`` + ``permute`` to heads;
* the decoder's single class query: self-attention over one token has softmax
  weight exactly 1, so it is ``out_proj(v_proj(query))`` (no scores, no softmax),
  and the token is carried as ``(B, D)`` rather than ``(B, 1, D)``;
* the key-padding mask becomes one additive ``-inf`` bias shared by every layer.

It shares the original model's parameters (no copy), and every export is checked
against the original PyTorch model, so a difference can never ship silently;
:func:`streamline` returns the original model for any structure it does not know.
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from models.spoter import SpoterEmbedding, mirror_averaged, unit_length

log = logging.getLogger(__name__)

# The exported graph's input and output names, in the order of StreamlinedSpoter.forward.
INPUT_NAMES = ("landmarks", "padding_mask")
OUTPUT_NAME = "embedding"


def _attention_supported(attn: nn.MultiheadAttention) -> bool:
    return (attn.batch_first and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
            and attn.bias_k is None and attn.bias_v is None and not attn.add_zero_attn)


def _layer_supported(layer: nn.Module, kind: type) -> bool:
    if not isinstance(layer, kind) or layer.norm_first:  # LeanEncoderLayer: stock maths in eval
        return False
    relu = layer.activation is F.relu or isinstance(layer.activation, nn.ReLU)
    attentions = [layer.self_attn] + ([layer.multihead_attn] if kind is nn.TransformerDecoderLayer else [])
    return relu and all(_attention_supported(a) for a in attentions)


def unsupported_reason(model: nn.Module) -> str | None:
    """Why :class:`StreamlinedSpoter` cannot stand in for ``model`` (None = it can)."""
    if type(model) is not SpoterEmbedding:
        return f"{type(model).__name__} is not a SpoterEmbedding"
    body = model.body
    if tuple(body.class_query.shape[:2]) != (1, 1):
        return "the decoder query is not a single token"
    if not all(_layer_supported(layer, nn.TransformerEncoderLayer) for layer in body.encoder.layers):
        return "an encoder layer is not a post-norm ReLU nn.TransformerEncoderLayer"
    if not all(_layer_supported(layer, nn.TransformerDecoderLayer) for layer in body.decoder.layers):
        return "a decoder layer is not a post-norm ReLU nn.TransformerDecoderLayer"
    return None


class StreamlinedSpoter(nn.Module):
    """``SpoterEmbedding.forward`` rewritten with fewer, export-friendly ops (same parameters)."""

    def __init__(self, model: SpoterEmbedding):
        super().__init__()
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"cannot streamline this model: {reason}")
        self.model = model
        self.config = model.config
        self.heads = model.config.num_heads
        self.dim = model.config.hidden_dim

    def _heads(self, x: torch.Tensor, batch: int, parts: int) -> tuple[torch.Tensor, ...]:
        """(B*T, parts*D) -> ``parts`` tensors of (B, H, T, D/H)."""
        x = x.unflatten(0, (batch, -1)).unflatten(-1, (parts, self.heads, self.dim // self.heads))
        return x.permute(2, 0, 3, 1, 4).unbind(0)  # from (B, T, parts, H, hd)

    def forward(self, landmarks: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, P, 2), (B, T) bool -> (B, vector_length), as ``SpoterEmbedding.forward`` in eval mode."""
        if self.config.mirror_average:
            return mirror_averaged(self.embed, landmarks, padding_mask, self.config.normalize_embeddings)
        return self.embed(landmarks, padding_mask)

    def embed(self, landmarks: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """As ``SpoterEmbedding.embed``: the clips as given."""
        body, d = self.model.body, self.dim
        x = body.frame_vectors(landmarks, padding_mask)  # the model's own input stage (B, T, D)
        bias = torch.zeros_like(padding_mask, dtype=x.dtype).masked_fill(padding_mask, float("-inf"))
        bias = bias[:, None, None, :]  # (B, 1, 1, T): broadcast over heads and queries
        batch = x.shape[0]
        # Frames as rows of one (B*T, D) matrix: every linear is then a single Gemm with
        # its bias (and ReLU) fused, instead of MatMul + Add on a 3-D tensor.
        x = x.flatten(0, 1)  # (B*T, D)
        hd = d // self.heads
        for layer in body.encoder.layers:
            attn = layer.self_attn
            q, k, v = self._heads(F.linear(x, attn.in_proj_weight, attn.in_proj_bias), batch, 3)
            scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1) + bias  # (B, H, T, T)
            out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(-1, d)  # (B, H, T, hd) -> (B*T, D)
            x = layer.norm1(x + attn.out_proj(out))
            x = layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))
        memory = body.encoder.norm(x) if body.encoder.norm is not None else x
        # The decoder has one token per clip: keep it 2-D (B, D). Besides saving reshapes,
        # this avoids a TFLite converter fault seen with (B, 1, D) linears (a fused
        # FULLY_CONNECTED whose output rank disagrees with the next MEAN's axis).
        y = body.class_query[:, 0].expand(batch, -1)  # (B, D)
        for layer in body.decoder.layers:
            attn = layer.self_attn  # one token: attention weight 1, output = out_proj(V)
            value = F.linear(y, attn.in_proj_weight[2 * d:], attn.in_proj_bias[2 * d:])
            y = layer.norm1(y + attn.out_proj(value))
            cross = layer.multihead_attn
            q = F.linear(y, cross.in_proj_weight[:d], cross.in_proj_bias[:d]).unflatten(-1, (self.heads, 1, hd))
            k, v = self._heads(F.linear(memory, cross.in_proj_weight[d:], cross.in_proj_bias[d:]), batch, 2)
            scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1) + bias  # (B, H, 1, T)
            y = layer.norm2(y + cross.out_proj((scores.softmax(-1) @ v).flatten(1)))  # (B, H, 1, hd) -> (B, D)
            y = layer.norm3(y + layer.linear2(F.relu(layer.linear1(y))))
        if body.decoder.norm is not None:
            y = body.decoder.norm(y)
        e = self.model.head(y)
        return unit_length(e) if self.config.normalize_embeddings else e


def streamline(model: nn.Module) -> nn.Module:
    """The streamlined graph when the structure is known, else ``model`` itself."""
    reason = unsupported_reason(model)
    if reason:
        log.info("exporting the model's own forward (%s)", reason)
        return model
    return StreamlinedSpoter(model).eval()
