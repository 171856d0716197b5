"""SPOTER (Sign POse-based TransformER) body with an embedding or a classification head.

Shapes: ``landmarks`` (B, T, P, 2) with P = ``config.num_points`` and ``padding_mask``
(B, T) bool, True = padded frame. Each frame is flattened to 2P features, an encoder
attends over the frames and a decoder decodes ONE learned class query against them.

Differences from the published code, on purpose:

* the class query's cross-attention gets ``memory_key_padding_mask`` (the published
  model let it attend to padded frames, so padding changed the embedding);
* standard ``nn.TransformerDecoderLayer`` (with self-attention over the single query,
  which is a learnable linear map of it) instead of a custom layer;
* a per-frame positional table by default (``"single"`` reproduces the published one);
* encoder layers are :class:`models.lean_layers.LeanEncoderLayer`: the stock layer's
  parameters and maths, trained with dropout in about a third of the saved-tensor memory;
* optional mirror averaging (``mirror_average``): outside training, the embedding of a clip
  is the mean of its own and its left/right mirror's, so a sign made with the other
  dominant hand lands on the same point (see :func:`mirror_averaged`);
* L2 normalisation written as ``e / sqrt(sum(e^2) + eps)``: ``F.normalize`` exports to
  ONNX ReduceL2, which the ONNX->TFLite route cannot convert.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from datasets import layout
from models.hand_geometry import HandShapeInput, features_per_frame
from models.lean_layers import LeanEncoderLayer
from models.positional import POSITIONAL_ENCODINGS, build_positional_encoding
from models.temporal_conv import TemporalConvFrontEnd, conv_macs_per_sample

NORM_EPS = 1e-12


@dataclass
class SpoterConfig:
    """Model hyper-parameters; plain data so ``asdict`` goes into checkpoints."""

    num_points: int = layout.NUM_POINTS  # landmarks per frame
    hidden_dim: int = layout.NUM_POINTS * layout.NUM_COORDS  # d_model; = frame features -> no input projection
    num_heads: int = 9
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    vector_length: int = 32  # embedding size
    normalize_embeddings: bool = False  # unit-length embeddings
    # "learned": per-frame table (<= max_frames); "sinusoidal": fixed, no length limit;
    # "single": the published single vector on every frame -> the model is blind to frame order.
    positional_encoding: str = "learned"
    max_frames: int = 512  # length limit of the "learned" table
    # Outside training, embed each clip and its left/right mirror and average the two
    # (needs the project's 54-point layout and the "centered" normalisation; see mirror_averaged).
    mirror_average: bool = False
    # Residual depthwise Conv1D blocks over the frames before the encoder (0 = none, the
    # published model) and their kernel in frames (odd); see models.temporal_conv.
    temporal_conv_blocks: int = 0
    temporal_conv_kernel: int = 5
    # Add size- and rotation-free hand-shape distances to each frame (54-point layout only;
    # see models.hand_geometry).
    hand_shape_features: bool = False
    classification: bool = False  # build SpoterClassifier instead of SpoterEmbedding
    num_classes: int = 0  # classifier outputs; required when classification=True

    def __post_init__(self) -> None:
        for name in ("num_points", "hidden_dim", "num_heads", "num_encoder_layers", "num_decoder_layers",
                     "dim_feedforward", "vector_length", "max_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SpoterConfig.{name} must be a positive int, got {value!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"SpoterConfig.hidden_dim={self.hidden_dim} is not divisible by "
                             f"num_heads={self.num_heads}")
        for name in ("temporal_conv_blocks", "temporal_conv_kernel"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SpoterConfig.{name} must be an int >= 0, got {value!r}")
        if self.temporal_conv_kernel % 2 == 0:
            raise ValueError(f"SpoterConfig.temporal_conv_kernel must be odd (frame t stays at t), "
                             f"got {self.temporal_conv_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SpoterConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.positional_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(f"SpoterConfig.positional_encoding={self.positional_encoding!r}; "
                             f"choose one of {', '.join(POSITIONAL_ENCODINGS)}")
        if self.mirror_average and (self.classification or self.num_points != layout.NUM_POINTS):
            raise ValueError(f"SpoterConfig.mirror_average needs an embedding model on the {layout.NUM_POINTS}-point "
                             f"layout (got classification={self.classification}, num_points={self.num_points})")
        if self.hand_shape_features and self.num_points != layout.NUM_POINTS:
            raise ValueError(f"SpoterConfig.hand_shape_features needs the {layout.NUM_POINTS}-point layout "
                             f"(got num_points={self.num_points})")
        if self.classification and self.num_classes < 1:
            raise ValueError("SpoterConfig.num_classes must be >= 1 when classification=True")

    @property
    def frame_features(self) -> int:
        return self.num_points * layout.NUM_COORDS

    @classmethod
    def from_dict(cls, d: dict) -> SpoterConfig:
        """Like ``SpoterConfig(**d)`` but names every unknown key in one clear error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)


class SpoterBody(nn.Module):
    """Frame projection + positional encoding + encoder + one decoded class token."""

    def __init__(self, config: SpoterConfig):
        super().__init__()
        self.config = config
        d = config.hidden_dim
        feats = config.frame_features
        self.input_proj = nn.Identity() if d == feats else nn.Linear(feats, d)
        self.pos_encoding = build_positional_encoding(config.positional_encoding, d, config.max_frames)
        self.class_query = nn.Parameter(torch.rand(1, 1, d))  # uniform init as published
        # nn.TransformerEncoderLayer with memory-lean training kernels (same parameters and maths)
        enc_layer = LeanEncoderLayer(d, config.num_heads, config.dim_feedforward, config.dropout, batch_first=True)
        dec_layer = nn.TransformerDecoderLayer(d, config.num_heads, config.dim_feedforward, config.dropout,
                                               batch_first=True)
        # The nested-tensor fast path (eval + no_grad only) packs away padded frames and
        # does not export; keep one dense code path for training, evaluation and export.
        self.encoder = nn.TransformerEncoder(enc_layer, config.num_encoder_layers, norm=nn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, config.num_decoder_layers, norm=nn.LayerNorm(d))
        # The optional input parts are drawn from a fork of the random state: every other
        # weight (here and in the head) is the one the model without them gets, and each
        # starts as the identity, so an untrained model with them equals one without them.
        self.hand_shape = self.temporal_conv = None
        with torch.random.fork_rng(devices=[]):
            if config.hand_shape_features:
                self.hand_shape = HandShapeInput(d)
            if config.temporal_conv_blocks:
                self.temporal_conv = TemporalConvFrontEnd(d, config.temporal_conv_blocks,
                                                          config.temporal_conv_kernel, config.dropout)

    def _check_inputs(self, landmarks: torch.Tensor, padding_mask: torch.Tensor | None) -> None:
        expected = (self.config.num_points, layout.NUM_COORDS)
        if landmarks.ndim != 4 or tuple(landmarks.shape[2:]) != expected:
            raise ValueError(f"landmarks must have shape (B, T, {expected[0]}, {expected[1]}), "
                             f"got {tuple(landmarks.shape)}")
        if landmarks.shape[1] < 1:
            raise ValueError("landmarks has no frames (T=0)")
        if padding_mask is None:
            return
        if padding_mask.dtype != torch.bool:
            raise ValueError(f"padding_mask must be bool (True = padded frame), got {padding_mask.dtype}")
        if tuple(padding_mask.shape) != tuple(landmarks.shape[:2]):
            raise ValueError(f"padding_mask shape {tuple(padding_mask.shape)} does not match landmarks "
                             f"(B, T) = {tuple(landmarks.shape[:2])}")
        empty = padding_mask.all(dim=1)
        if bool(empty.any()):
            rows = empty.nonzero().flatten().tolist()
            raise ValueError(f"every clip needs at least one valid frame; fully padded batch row(s): {rows}")

    def frame_vectors(self, landmarks: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, P, 2), (B, T) bool -> what the encoder reads, (B, T, D): each frame's points as
        one vector, the optional hand-shape features and temporal blocks, the positions."""
        if padding_mask is not None:
            # Padded frames are excluded by the masks, but NaN/inf there would still leak
            # through 0 * NaN in attention; zero them.
            landmarks = landmarks.masked_fill(padding_mask[..., None, None], 0.0)
        x = self.input_proj(landmarks.flatten(2))  # (B, T, D)
        if self.hand_shape is not None:
            x = self.hand_shape(x, landmarks)
        if self.temporal_conv is not None:
            x = self.temporal_conv(x, padding_mask)
        return self.pos_encoding(x)

    def forward(self, landmarks: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, P, 2), (B, T) bool -> decoded class token (B, hidden_dim)."""
        if not torch.compiler.is_compiling():  # data-dependent checks stay out of exported graphs
            self._check_inputs(landmarks, padding_mask)
        x = self.frame_vectors(landmarks, padding_mask)
        memory = self.encoder(x, src_key_padding_mask=padding_mask)  # (B, T, D)
        query = self.class_query.expand(x.shape[0], -1, -1)  # (B, 1, D)
        out = self.decoder(query, memory, memory_key_padding_mask=padding_mask)  # (B, 1, D)
        return out[:, 0]  # (B, D)


def unit_length(e: torch.Tensor) -> torch.Tensor:
    """``e / |e|`` along the last axis, in ops every export route converts (not ReduceL2)."""
    return e / torch.sqrt(e.pow(2).sum(dim=-1, keepdim=True) + NORM_EPS)


def mirror_normalized(landmarks: torch.Tensor) -> torch.Tensor:
    """The left/right mirror of NORMALISED clips (..., 54, 2): swap every left point with
    its right twin and negate x.

    Why this equals mirroring the raw image (x -> 1 - x) and normalising again: the
    "centered" body space is centred on the neck and sized by the shoulder (or neck-nose)
    distance, and each hand box is padded symmetrically about the hand, so a horizontal
    flip of the image only flips the sign of every normalised x. Undetected points stay 0.
    """
    index = torch.as_tensor(layout.MIRROR_PERMUTATION, device=landmarks.device)
    flip = torch.tensor([-1.0, 1.0], dtype=landmarks.dtype, device=landmarks.device)
    return landmarks.index_select(-2, index) * flip


def mirror_averaged(embed, landmarks: torch.Tensor, padding_mask: torch.Tensor | None,
                    unit: bool) -> torch.Tensor:
    """``embed`` of each clip and of its mirror, in one batch of 2B, averaged (re-normalised if ``unit``).

    Why: signers differ in their dominant hand, and a person the model never saw may sign
    with the other one. Averaging makes the embedding exactly mirror-invariant at no cost
    in training; on person-disjoint folds it raised top-1 for every seed tried.
    """
    batch = landmarks.shape[0]
    both = torch.cat([landmarks, mirror_normalized(landmarks)], dim=0)
    mask = None if padding_mask is None else torch.cat([padding_mask, padding_mask], dim=0)
    e = embed(both, mask)
    e = e[:batch] + e[batch:]
    return unit_length(e) if unit else e * 0.5


class SpoterEmbedding(nn.Module):
    """SPOTER body + linear projection to a ``vector_length`` embedding (optionally unit length)."""

    def __init__(self, config: SpoterConfig):
        super().__init__()
        self.config = config
        self.body = SpoterBody(config)
        self.head = nn.Linear(config.hidden_dim, config.vector_length)

    def embed(self, landmarks: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The embedding of the clips as given (no mirror averaging)."""
        e = self.head(self.body(landmarks, padding_mask))
        return unit_length(e) if self.config.normalize_embeddings else e

    def forward(self, landmarks: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, P, 2), (B, T) bool -> (B, vector_length); mirror-averaged outside training if configured."""
        if self.config.mirror_average and not self.training:
            return mirror_averaged(self.embed, landmarks, padding_mask, self.config.normalize_embeddings)
        return self.embed(landmarks, padding_mask)


class SpoterClassifier(nn.Module):
    """SPOTER body + linear head to ``num_classes`` logits (the original SPOTER task)."""

    def __init__(self, config: SpoterConfig):
        super().__init__()
        if config.num_classes < 1:
            raise ValueError("SpoterClassifier needs config.num_classes >= 1")
        self.config = config
        self.body = SpoterBody(config)
        self.head = nn.Linear(config.hidden_dim, config.num_classes)

    def forward(self, landmarks: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, P, 2), (B, T) bool -> logits (B, num_classes)."""
        return self.head(self.body(landmarks, padding_mask))


def _as_config(config: dict | SpoterConfig) -> SpoterConfig:
    if isinstance(config, SpoterConfig):
        return config
    if isinstance(config, dict):
        return SpoterConfig.from_dict(config)
    raise TypeError(f"model config must be a dict or SpoterConfig, got {type(config).__name__}")


def build_model(config: dict | SpoterConfig) -> nn.Module:
    """SpoterClassifier if ``config.classification`` else SpoterEmbedding.

    A dict is typically ``checkpoint["model_config"]`` written from ``asdict(config)``.
    """
    cfg = _as_config(config)
    return SpoterClassifier(cfg) if cfg.classification else SpoterEmbedding(cfg)


def count_flops_per_sample(config: dict | SpoterConfig, frames: int) -> int:
    """Analytic multiply-add count (MACs) of one forward pass for one clip of ``frames`` frames.

    Counts matrix products only (projections, attention scores, attention-weighted sums,
    feed-forward, heads); layer norms, softmax, activations, biases and the positional add
    are O(T*D) and ignored. FLOPs are about twice this number. Padded frames cost the same
    as real ones, so for a padded batch pass the padded length.
    """
    cfg = _as_config(config)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    t, d, f = frames, cfg.hidden_dim, cfg.dim_feedforward
    macs = 0
    if d != cfg.frame_features:
        macs += t * cfg.frame_features * d  # input projection
    if cfg.hand_shape_features:
        macs += t * features_per_frame() * d  # their linear map into the frame vector
    macs += conv_macs_per_sample(d, cfg.temporal_conv_blocks, cfg.temporal_conv_kernel, t)
    # Encoder layer: Q,K,V + output projections, scores QK^T and weights@V, feed-forward.
    macs += cfg.num_encoder_layers * (4 * t * d * d + 2 * t * t * d + 2 * t * d * f)
    # Decoder layer with ONE query token:
    #   self-attention: Q,K,V,out projections of 1 token + 1x1 scores/sum
    #   cross-attention: Q,out projections of 1 token, K,V projections of T memory frames,
    #                    1xT scores and weighted sum
    #   feed-forward of 1 token
    per_dec = (4 * d * d + 2 * d) + (2 * d * d + 2 * t * d * d + 2 * t * d) + 2 * d * f
    macs += cfg.num_decoder_layers * per_dec
    macs += d * (cfg.num_classes if cfg.classification else cfg.vector_length)  # head
    return macs


__all__ = [
    "SpoterConfig", "SpoterBody", "SpoterEmbedding", "SpoterClassifier", "build_model",
    "count_flops_per_sample", "mirror_normalized", "mirror_averaged", "unit_length",
]
