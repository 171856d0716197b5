"""What every export starts from: a checkpoint, checked, with its model rebuilt from the stored config."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from datasets.atomic import current_umask
from datasets.errors import DataError, UsageError
from models.checkpoint import load_checkpoint, model_from_checkpoint
from models.spoter import SpoterConfig

# What the model expects its input to have gone through (``checkpoint["normalization"]``);
# model.json hands it to every consumer, so a checkpoint without it cannot be exported.
NORMALIZATION_KEYS = ("body", "hands", "resample_frames", "max_frames")


@dataclass
class ExportSource:
    """A loaded, checked checkpoint and its model in eval mode."""

    path: Path
    sha256: str
    checkpoint: dict
    config: SpoterConfig
    model: torch.nn.Module

    @property
    def normalization(self) -> dict:
        return dict(self.checkpoint["normalization"])

    @property
    def label_names(self) -> list[str]:
        return [str(name) for name in (self.checkpoint.get("label_names") or [])]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_model_config(checkpoint: dict, path: Path) -> SpoterConfig:
    stored = checkpoint["model_config"]
    if not isinstance(stored, dict):
        raise DataError(f"{path}: model_config is a {type(stored).__name__}, expected a dict")
    # Defaults would silently fill a missing field and export a model that is not the
    # trained one (or fail later with a shape mismatch), so every field must be there.
    missing = [f.name for f in fields(SpoterConfig) if f.name not in stored]
    if missing:
        raise DataError(f"{path}: checkpoint model_config is missing field(s): {', '.join(missing)}")
    try:
        config = SpoterConfig.from_dict(dict(stored))
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: invalid model_config ({str(error).strip().splitlines()[0]})") from None
    if config.classification:
        raise DataError(f"{path}: this is a classification checkpoint; export handles embedding models only")
    return config


def _check_normalization(checkpoint: dict, path: Path) -> None:
    norm = checkpoint.get("normalization")
    if not isinstance(norm, dict):
        raise DataError(f"{path}: checkpoint has no 'normalization' entry (needed to tell consumers how to "
                        "prepare landmarks)")
    missing = [k for k in NORMALIZATION_KEYS if k not in norm]
    if missing:
        raise DataError(f"{path}: checkpoint normalization is missing field(s): {', '.join(missing)}")


def load_source(checkpoint_path: str | os.PathLike) -> ExportSource:
    """Load ``checkpoint_path`` (weights only) and rebuild its model; one-line DataError otherwise."""
    path = Path(checkpoint_path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a checkpoint file")
    checkpoint = load_checkpoint(path)
    config = _check_model_config(checkpoint, path)
    _check_normalization(checkpoint, path)
    model = model_from_checkpoint(checkpoint, str(path))
    return ExportSource(path=path, sha256=file_sha256(path), checkpoint=checkpoint, config=config, model=model)


def prepare_output_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and prove it is writable now, before minutes of export work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: output folder exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DataError(f"{folder}: output folder is not writable ({reason})") from None
    return folder


def make_readable(path: Path) -> Path:
    """Give a written file the usual umask permissions (temp files are created owner-only),
    so a web server or another user can read the exported models."""
    os.chmod(path, 0o666 & ~current_umask())
    return path
