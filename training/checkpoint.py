"""Checkpoints as plain dicts: loadable with ``torch.load(..., weights_only=True)``."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from datasets.atomic import atomic_write
from datasets.errors import DataError

REQUIRED_KEYS = ("state_dict", "config", "model_config", "label_names")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
_PICKLE_PROTO = b"\x80"      # the legacy format starts with a pickle protocol opcode


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
