"""Checkpoints as plain dicts: loadable with ``torch.load(..., weights_only=True)``."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from datasets.atomic import atomic_write
from datasets.errors import DataError

REQUIRED_KEYS = ("state_dict", "config", "model_config", "label_names")


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write atomically: a crash at any moment leaves the previous file intact."""
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and check a checkpoint; anything else (or a pickle that would run code) is refused."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for foreign or malicious files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a loadable checkpoint ({first_line[:200]})") from None
    if not isinstance(checkpoint, dict):
        raise DataError(f"{path}: not a checkpoint (expected a dict, got {type(checkpoint).__name__})")
    missing = [k for k in REQUIRED_KEYS if k not in checkpoint]
    if missing:
        raise DataError(f"{path}: checkpoint is missing {', '.join(missing)}")
    return checkpoint


def model_from_checkpoint(checkpoint: dict, path: str = "checkpoint"):
    """Rebuild the model from its stored config and load its weights (eval mode)."""
    from models.spoter import SpoterConfig, build_model
    try:
        model = build_model(SpoterConfig.from_dict(dict(checkpoint["model_config"])))
        model.load_state_dict(checkpoint["state_dict"])
    except (ValueError, TypeError, RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise DataError(f"{path}: checkpoint does not match its model config ({first_line[:200]})") from None
    return model.eval()
