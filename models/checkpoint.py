"""Checkpoints as plain dicts: loadable with ``torch.load(..., weights_only=True)``.

A checkpoint is a model's weights and config plus how its clips were prepared, so
everything that reads one (evaluation, export, the web build) needs only this module,
not the training package that wrote it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from augmentations.normalization import BODY_VARIANTS
from augmentations.preprocess import DEFAULT_SETTINGS
from datasets.atomic import atomic_write
from datasets.errors import DataError

REQUIRED_KEYS = ("state_dict", "config", "model_config", "label_names")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
_PICKLE_PROTO = b"\x80"      # the legacy format starts with a pickle protocol opcode


def checkpoint_payload(state_dict: dict, config: dict, model_config: dict, label_names, normalization: dict,
                       metrics: dict | None = None, **training_state) -> dict:
    """The one layout of a checkpoint: weights, the run's config and the model's, the vocabulary,
    how clips were prepared (:func:`preparation_settings` reads it back) and the numeric metrics;
    ``training_state`` (optimiser, schedulers, epoch, ...) is kept as given, for resuming."""
    return {
        "state_dict": state_dict, "config": dict(config), "model_config": dict(model_config),
        "label_names": [str(name) for name in label_names], "normalization": dict(normalization),
        "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))},
        **training_state,
    }


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write atomically: a crash at any moment leaves the previous file intact."""
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and check a checkpoint; anything else (or a pickle that would run code) is refused."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found" + (" (it is a folder)" if path.is_dir() else ""))
    with open(path, "rb") as handle:
        magic = handle.read(len(_ZIP_MAGIC))
    if not magic:
        raise DataError(f"{path}: not a loadable checkpoint (empty file)")
    if magic != _ZIP_MAGIC and magic[:1] != _PICKLE_PROTO:
        raise DataError(f"{path}: not a loadable checkpoint (neither a PyTorch zip archive nor a pickle)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for foreign or malicious files
        raise DataError(f"{path}: {_load_failure(error)}") from None
    if not isinstance(checkpoint, dict):
        raise DataError(f"{path}: not a checkpoint (expected a dict, got {type(checkpoint).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in checkpoint]
    if missing:
        raise DataError(f"{path}: checkpoint is missing {', '.join(missing)}")
    state = checkpoint["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise DataError(f"{path}: checkpoint state_dict is not a mapping of names to tensors")
    for key in ("config", "model_config"):
        if not isinstance(checkpoint[key], dict):
            raise DataError(f"{path}: checkpoint {key} is not a dict (got {type(checkpoint[key]).__name__})")
    names = checkpoint["label_names"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{path}: checkpoint label_names is not a list of strings")
    return checkpoint


def _load_failure(error: Exception) -> str:
    """What torch.load's (long, generic) message says about this file, in one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    unsafe = next((line for line in lines if "GLOBAL" in line), None)
    if unsafe is not None:
        return (f"refused: it holds Python objects that could run code when loaded ({unsafe.rstrip('.')}); "
                "only plain-weight checkpoints (torch.load weights_only=True) are accepted")
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    detail = next((line for line in lines if not line.startswith(boilerplate)), type(error).__name__)
    return f"not a loadable checkpoint ({detail[:200]})"


def model_from_checkpoint(checkpoint: dict, path: str = "checkpoint"):
    """Rebuild the model from its stored config and load its weights (eval mode)."""
    from models.spoter import SpoterConfig, build_model
    try:
        model = build_model(SpoterConfig.from_dict(dict(checkpoint["model_config"])))
        model.load_state_dict(checkpoint["state_dict"])
    except (ValueError, TypeError, RuntimeError, KeyError) as error:
        raise DataError(f"{path}: checkpoint does not match its model config ({error_detail(error)})") from None
    return model.eval()


def error_detail(error: Exception, limit: int = 240) -> str:
    """The informative start of a (multi-line) torch message, on one line.

    ``load_state_dict``'s first line only says "Error(s) in loading state_dict for X:";
    the second names the first missing, unexpected or mis-shaped tensor.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    return " ".join(lines[:2])[:limit]


def preparation_settings(checkpoint: dict, path: str = "checkpoint") -> dict:
    """How the checkpoint's clips were prepared: the settings dict of :func:`augmentations.preprocess.prepare`.

    The stored ``normalization`` block takes precedence over the training ``config``
    (older checkpoints lack some of its keys); a length limit recorded nowhere is the
    model's own (its learned positional table).
    """
    config, stored = checkpoint.get("config") or {}, checkpoint.get("normalization") or {}
    if not isinstance(stored, dict):
        raise DataError(f"{path}: checkpoint normalization is not a dict (got {type(stored).__name__})")
    settings = {
        **DEFAULT_SETTINGS,
        "body": config.get("normalization", DEFAULT_SETTINGS["body"]),
        "max_frames": config.get("max_frames", checkpoint["model_config"].get("max_frames", DEFAULT_SETTINGS["max_frames"])),
        "resample_frames": config.get("resample_frames", DEFAULT_SETTINGS["resample_frames"]),
        "canonical_handedness": config.get("canonical_handedness", DEFAULT_SETTINGS["canonical_handedness"]),
    }
    settings.update({key: stored[key] for key in ("hands", "max_frames", "resample_frames", "canonical_handedness")
                     if key in stored})
    if "body" in stored:
        settings["body"] = stored["body"]
    try:
        settings = {"body": str(settings["body"]), "hands": bool(settings["hands"]),
                    "resample_frames": int(settings["resample_frames"] or 0), "max_frames": int(settings["max_frames"]),
                    "canonical_handedness": bool(settings["canonical_handedness"])}
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: checkpoint clip preparation settings are not usable ({error})") from None
    if settings["body"] not in BODY_VARIANTS:
        raise DataError(f"{path}: checkpoint normalization {settings['body']!r} is not one of {', '.join(BODY_VARIANTS)}")
    if settings["max_frames"] < 1 or settings["resample_frames"] < 0:
        raise DataError(f"{path}: checkpoint frame limits are not usable (max_frames {settings['max_frames']}, "
                        f"resample_frames {settings['resample_frames']})")
    return settings
