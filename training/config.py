"""Training configuration: one typed dataclass, saved into checkpoints as a plain dict.

The model's hyper-parameters are not restated here: their defaults are read from
:class:`models.spoter.SpoterConfig`, the one place that defines them. Named presets
(``configs/*.json``) are plain JSON objects of these keys, loaded with ``--config``.
"""
from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import PurePath

from models.spoter import SpoterConfig

_MODEL = SpoterConfig()  # defaults of the model fields below

# What ``--select_metric`` may name: a metric evaluate_epoch logs on evaluated epochs.
SELECT_METRICS = ("auto", "val_cross_signer_top1", "val_cross_signer_top5", "val_top1", "val_top5",
                  "val_silhouette", "train_silhouette")
AMP_MODES = ("auto", "off", "bf16", "fp16")
LOSSES = ("triplet", "cosface", "supcon")
PATH_LIST_FIELDS = ("training_set_path", "validation_set_path")


def path_list(value: str | list) -> list[str]:
    """A path field as a list of paths ("" = none)."""
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


@dataclass
class TrainConfig:
    # --- experiment
    experiment_name: str = "spoter_embeddings"
    seed: int = 42
    out_dir: str = "out-checkpoints"
    tracker: str = "local"                 # local | clearml | none
    resume: bool = False
    init_checkpoint: str = ""              # start from these weights (fine-tuning a pre-trained model)
    # --- data
    dataset_loader: str = "local"          # local | clearml
    dataset_name: str = ""
    dataset_project: str = "spoter_embeddings"
    # Each: one path, or a list of paths whose samples are joined (glosses merged by name).
    training_set_path: str | list = "data/builtin/builtin_train.csv"
    validation_set_path: str | list = ""        # empty = no validation set
    train_split: str = ""                  # landmark folders only; "" = "train"
    val_split: str = ""                    # landmark folders only; "" = "val" if present, else "test"
    skip_bad_files: bool = False           # train without the unusable files of a landmark folder (else: error)
    num_workers: int = 0
    sampler: str = "pk"                    # pk | random
    samples_per_class: int = 4             # K of the P×K sampler (P = batch_size // K)
    length_batching: bool = False          # batches of similar clip lengths, padded to multiples of 16
    max_frames: int = _MODEL.max_frames    # longer clips are resampled down to this (and the learned table's size)
    resample_frames: int = 0               # > 0: every clip resampled to this length
    normalization: str = "centered"        # centered | spoter | none
    canonical_handedness: bool = False     # mirror clips whose left hand is the active one
    augmentations_prob: float = 0.5
    augmentation_strength: float = 1.0
    mirror_prob: float = 0.0
    time_warp_prob: float = 0.0            # re-time clips (another person's speed and rhythm)
    hand_dropout_prob: float = 0.0         # hide one hand over a random stretch of frames
    gaussian_mean: float = 0.0
    gaussian_std: float = 0.001
    # --- model
    classification_model: bool = False
    num_classes: int = 0                   # 0 = the training data's gloss count (classifier outputs)
    hidden_dim: int = _MODEL.hidden_dim
    num_heads: int = _MODEL.num_heads
    num_encoder_layers: int = _MODEL.num_encoder_layers
    num_decoder_layers: int = _MODEL.num_decoder_layers
    dim_feedforward: int = _MODEL.dim_feedforward
    vector_length: int = _MODEL.vector_length
    dropout: float = _MODEL.dropout
    normalize_embeddings: bool = _MODEL.normalize_embeddings
    positional_encoding: str = _MODEL.positional_encoding  # learned | sinusoidal | single
    mirror_average: bool = _MODEL.mirror_average  # outside training: mean embedding of the clip and its mirror
    temporal_conv_blocks: int = _MODEL.temporal_conv_blocks  # depthwise Conv1D blocks before the encoder; 0 = none
    temporal_conv_kernel: int = _MODEL.temporal_conv_kernel  # their kernel in frames (odd)
    hand_shape_features: bool = _MODEL.hand_shape_features  # add size/rotation-free hand-shape distances
    # --- loss and mining
    loss: str = "triplet"                  # triplet (published) | cosface (learned gloss directions) | supcon
    loss_scale: float = 16.0               # cosface: logit scale
    loss_margin: float = 0.2               # cosface: additive cosine margin on the true gloss
    loss_subcenters: int = 1               # cosface: learned directions per gloss
    loss_temperature: float = 0.1          # supcon: softmax temperature
    hard_triplet_mining: str = "in_batch"  # in_batch (batch-all) | batch_hard | None (no mining: batch-all, unfiltered)
    triplet_loss_margin: float = 1.0
    filter_easy_triplets: bool = False
    distance: str = "euclidean"            # euclidean | cosine
    start_mining_hard: int = -1            # epoch from which batches are regrouped hard; -1 = never
    hard_mining_pre_batch_multipler: int = 16
    hard_mining_pre_batch_mining_count: int = 5
    hard_mining_scheduler_triplets_threshold: float = 0.0  # active-triplet share below which grouping tightens; 0 = never
    hard_mining_scheduler_threshold: float = 0.9   # initial grouping threshold (see training.hard_grouping)
    hard_mining_scheduler_factor: float = 0.9      # threshold *= factor at each tightening
    # --- optimisation
    epochs: int = 20
    epoch_iters: int = -1                  # batches per epoch; -1 = one pass over the training set
    batch_size: int = 32
    optimizer: str = "ADAM"                # SGD | ADAM
    lr: float = 1e-4
    weight_decay: float = 0.0
    scheduler_factor: float = 0.5
    scheduler_patience: int = 5
    scheduler_warmup: int = 0              # epochs of linear warm-up
    grad_clip: float = 1.0
    ema_decay: float = 0.0                 # > 0: evaluate, select and save an EMA of the weights (e.g. 0.995); 0 = off
    amp: str = "auto"                      # mixed precision: auto (fp16 on CUDA, off on CPU) | off | bf16 | fp16
    # --- evaluation, checkpoints
    eval_every: int = 1
    select_metric: str = "auto"            # best.pth: auto = val_cross_signer_top1 if val signers known, else val_top1
    report_untrained: bool = True          # evaluate the untrained network at the end, for comparison
    save_checkpoints_every: int = 0        # also keep epoch_<n>.pth every n epochs; 0 = only best and last
    plot_every: int = 0                    # t-SNE scatter of validation embeddings every n epochs; 0 = last only
    device: str = "auto"                   # auto | cpu | cuda | cuda:N

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        """Build from plain data (a JSON file, a checkpoint); keys and value types are checked.

        ``source`` names where the values come from in error messages.
        """
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected an object of config keys, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown config keys: {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        checked = {}
        for name, value in values.items():
            kind = hints[name]
            if name in PATH_LIST_FIELDS:
                if not (isinstance(value, str) or isinstance(value, list) and value
                        and all(isinstance(v, str) for v in value)):
                    raise ValueError(f"{source}: {name} must be a path or a non-empty list of paths, got {value!r}")
                checked[name] = value[0] if isinstance(value, list) and len(value) == 1 else value
                continue
            # bool is an int subclass, and JSON has no int/float distinction for whole numbers.
            fits = (isinstance(value, bool) if kind is bool else
                    isinstance(value, int) and not isinstance(value, bool) if kind is int else
                    isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
                    isinstance(value, kind))
            if not fits:
                raise ValueError(f"{source}: {name} must be {kind.__name__}, got {value!r}")
            checked[name] = float(value) if kind is float else value
        return cls(**checked)

    def check(self) -> None:
        """Refuse settings that cannot work, before any data is loaded.

        Long on purpose: a flat list of independent guards, one per setting or pair of
        settings, so the rule for any flag is found by searching its name here.
        """
        from datasets.errors import UsageError
        positive = ("epochs", "batch_size", "vector_length", "hidden_dim", "num_heads", "samples_per_class", "max_frames")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{name} must be at least 1 (got {getattr(self, name)})")
        if self.batch_size < 2:
            raise UsageError(f"--batch_size must be at least 2 for triplets (got {self.batch_size})")
        if self.hidden_dim % self.num_heads:
            raise UsageError(f"--hidden_dim {self.hidden_dim} must be a multiple of --num_heads {self.num_heads} "
                             "(each attention head gets hidden_dim / num_heads features)")
        if self.sampler == "pk" and self.samples_per_class < 2:
            raise UsageError(f"--samples_per_class must be at least 2 for the P×K sampler, so that every anchor "
                             f"has a positive (got {self.samples_per_class})")
        non_negative = ("resample_frames", "num_workers", "eval_every", "save_checkpoints_every", "plot_every",
                        "scheduler_warmup", "scheduler_patience", "augmentation_strength", "gaussian_std",
                        "triplet_loss_margin", "weight_decay", "grad_clip")
        for name in non_negative:
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise UsageError(f"--{name} must be 0 or more (got {getattr(self, name)})")
        if not math.isfinite(self.gaussian_mean):
            raise UsageError(f"--gaussian_mean must be a finite number (got {self.gaussian_mean})")
        if self.epoch_iters == 0 or self.epoch_iters < -1:
            raise UsageError(f"--epoch_iters must be -1 (one pass over the training set) or at least 1 "
                             f"(got {self.epoch_iters})")
        if self.hard_mining_pre_batch_multipler < 1 or self.hard_mining_pre_batch_mining_count < 1:
            raise UsageError("--hard_mining_pre_batch_multipler and --hard_mining_pre_batch_mining_count must be "
                             f"at least 1 (got {self.hard_mining_pre_batch_multipler} and "
                             f"{self.hard_mining_pre_batch_mining_count})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be a positive number (got {self.lr})")
        if not 0 < self.scheduler_factor < 1:
            raise UsageError(f"--scheduler_factor must be between 0 and 1 (exclusive), got {self.scheduler_factor}")
        name = PurePath(self.experiment_name)
        if not self.experiment_name or name.is_absolute() or ".." in name.parts:
            raise UsageError(f"--experiment_name {self.experiment_name!r} must be a folder name inside --out_dir "
                             "(not empty, not absolute, no '..')")
        if not all(0 <= getattr(self, name) <= 1 for name in ("augmentations_prob", "mirror_prob", "time_warp_prob",
                                                               "hand_dropout_prob")):
            raise UsageError("--augmentations_prob, --mirror_prob, --time_warp_prob and --hand_dropout_prob must be "
                             "between 0 and 1")
        if self.mirror_average and (self.classification_model or self.normalization != "centered"):
            raise UsageError("--mirror_average mirrors normalised clips, which is exact for --normalization centered "
                             f"embedding models only (got --normalization {self.normalization}"
                             f"{', --classification_model' if self.classification_model else ''})")
        if self.temporal_conv_blocks < 0 or self.temporal_conv_kernel < 1 or self.temporal_conv_kernel % 2 == 0:
            raise UsageError(f"--temporal_conv_blocks must be 0 or more and --temporal_conv_kernel a positive odd "
                             f"number of frames (got {self.temporal_conv_blocks} and {self.temporal_conv_kernel})")
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"--ema_decay must be in [0, 1): 0 = off, e.g. 0.995 (got {self.ema_decay})")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if not 0 <= self.hard_mining_scheduler_triplets_threshold <= 1:
            raise UsageError("--hard_mining_scheduler_triplets_threshold is a share of active triplets and must be "
                             f"between 0 and 1 (got {self.hard_mining_scheduler_triplets_threshold})")
        if not 0 < self.hard_mining_scheduler_threshold <= 1:
            raise UsageError("--hard_mining_scheduler_threshold must be in (0, 1] "
                             f"(got {self.hard_mining_scheduler_threshold})")
        if not 0 < self.hard_mining_scheduler_factor < 1:
            raise UsageError(f"--hard_mining_scheduler_factor must be between 0 and 1 (exclusive), "
                             f"got {self.hard_mining_scheduler_factor}")
        if self.loss in ("cosface", "supcon") and self.distance != "cosine":
            raise UsageError(f"--loss {self.loss} compares directions (cosine similarity); use it with "
                             f"--distance cosine (got --distance {self.distance})")
        if self.loss != "triplet" and self.start_mining_hard >= 0:
            raise UsageError(f"--start_mining_hard regroups batches by their active triplets, which --loss {self.loss} "
                             "does not have; use --start_mining_hard -1")
        if self.loss != "triplet" and self.classification_model:
            raise UsageError(f"--loss {self.loss} trains an embedding; --classification_model uses cross entropy")
        if not (self.loss_scale > 0 and self.loss_temperature > 0 and self.loss_margin >= 0
                and self.loss_subcenters >= 1):
            raise UsageError("--loss_scale and --loss_temperature must be positive, --loss_margin 0 or more and "
                             f"--loss_subcenters at least 1 (got {self.loss_scale}, {self.loss_temperature}, "
                             f"{self.loss_margin}, {self.loss_subcenters})")
        if self.num_classes < 0:
            raise UsageError(f"--num_classes must be 0 (= the training data's gloss count) or more (got "
                             f"{self.num_classes})")
        if self.filter_easy_triplets and str(self.hard_triplet_mining) != "in_batch":
            raise UsageError(f"--filter_easy_triplets applies to batch-all mining (--hard_triplet_mining in_batch), "
                             f"not to --hard_triplet_mining {self.hard_triplet_mining}")
        choices = {"sampler": ("pk", "random"), "loss": LOSSES, "amp": AMP_MODES, "select_metric": SELECT_METRICS, "optimizer": ("SGD", "ADAM", "sgd", "adam"),
                   "normalization": ("centered", "spoter", "none"), "distance": ("euclidean", "cosine"),
                   "positional_encoding": ("learned", "sinusoidal", "single"), "tracker": ("local", "clearml", "none"),
                   "dataset_loader": ("local", "clearml"),
                   "hard_triplet_mining": ("in_batch", "batch_hard", "None", "none")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UsageError(f"--{name} {getattr(self, name)!r}: choose one of {', '.join(allowed)}")

    def preprocessing(self) -> dict:
        """The clip preparation settings (augmentations.preprocess), stored in checkpoints as ``normalization``."""
        return {"body": self.normalization, "hands": True, "resample_frames": self.resample_frames,
                "max_frames": self.max_frames, "canonical_handedness": self.canonical_handedness}

    def to_dict(self) -> dict:
        return asdict(self)

    def model_config(self, num_classes: int) -> dict:
        """The model's own config (models.spoter.SpoterConfig fields)."""
        return {
            "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
            "num_encoder_layers": self.num_encoder_layers, "num_decoder_layers": self.num_decoder_layers,
            "dim_feedforward": self.dim_feedforward, "dropout": self.dropout,
            "vector_length": self.vector_length, "normalize_embeddings": self.normalize_embeddings,
            "positional_encoding": self.positional_encoding, "mirror_average": self.mirror_average,
            "temporal_conv_blocks": self.temporal_conv_blocks, "temporal_conv_kernel": self.temporal_conv_kernel,
            "hand_shape_features": self.hand_shape_features,
            "max_frames": max(self.max_frames, self.resample_frames, 1),
            "classification": self.classification_model, "num_classes": num_classes,
        }
