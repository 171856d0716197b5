"""Set-up steps the notebooks share, so they run top to bottom on a fresh checkout.

Relative paths are taken from the repository root (notebooks run from ``notebooks/``).
The built-in synthetic data is generated when missing, and when no checkpoint exists a
small model is trained on the data at hand, so both notebooks always have something to show.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from datasets.errors import UsageError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILTIN_NAME = "builtin"
ZERO_SHOT_NAME = "zeroshot"
# A vocabulary disjoint from the built-in one: other seed (other sign recipes and names), fewer glosses.
ZERO_SHOT_PARAMS = {"num_classes": 20, "num_signers": 6, "samples_per_class_per_signer": 2, "val_signers": 0,
                    "seed": 1001}
# The fallback model: the default architecture, made shallow and trained briefly (about a minute on a CPU).
FALLBACK_MODEL = {"num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 256, "epochs": 4,
                  "epoch_iters": 25, "batch_size": 16, "samples_per_class": 4, "lr": 3e-4, "eval_every": 4,
                  "tracker": "none"}


def resolve(path: str | os.PathLike | None) -> Path | None:
    """``path`` itself if absolute, else relative to the repository root."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def ensure_builtin_data(folder: str | os.PathLike = "data/builtin") -> Path:
    """The built-in synthetic data set (``builtin_train.csv``/``builtin_val.csv`` + landmarks), made if missing."""
    from datasets.synthetic import write_synthetic_dataset
    folder = resolve(folder)
    if not (folder / f"{BUILTIN_NAME}_train.csv").is_file():
        log.info("generating the built-in synthetic data in %s", folder)
        write_synthetic_dataset(folder, name=BUILTIN_NAME)
    return folder


def ensure_zero_shot_data(folder: str | os.PathLike = "data/builtin-zero-shot") -> Path:
    """A synthetic landmark folder whose glosses no built-in model was trained on, made if missing."""
    from datasets.synthetic import write_synthetic_dataset
    folder = resolve(folder)
    if not (folder / "index.csv").is_file():
        log.info("generating a zero-shot synthetic data set in %s", folder)
        write_synthetic_dataset(folder, name=ZERO_SHOT_NAME, **ZERO_SHOT_PARAMS)
    return folder


def ensure_checkpoint(checkpoint: str | os.PathLike, training_data: str | os.PathLike,
                      validation_data: str | os.PathLike | None = None,
                      out_dir: str | os.PathLike = "out-checkpoints", experiment: str = "notebook-fallback",
                      **overrides) -> Path:
    """``checkpoint`` if it exists; else the fallback model trained before, or a new one on ``training_data``.

    A landmark folder is used with its ``train`` split for training and its ``val`` (or
    ``test``) split for validation. ``overrides`` are TrainConfig fields for that model.
    """
    from training.config import TrainConfig
    from training.engine import train
    path = resolve(checkpoint)
    if path is not None and path.is_file():
        return path
    out = resolve(out_dir)
    previous = out / experiment / "best.pth"
    if previous.is_file():
        log.warning("checkpoint %s not found: using the small model trained earlier, %s", path, previous)
        return previous
    training_data = resolve(training_data)
    if not training_data.exists():
        raise UsageError(f"{training_data}: no data to train the fallback model on")
    validation = resolve(validation_data) if validation_data is not None else (
        training_data if training_data.is_dir() else None)
    log.warning("checkpoint %s not found: training a small model on %s (results will be modest)", path, training_data)
    config = TrainConfig(experiment_name=experiment, out_dir=str(out), training_set_path=str(training_data),
                         validation_set_path=str(validation) if validation is not None else "",
                         **{**FALLBACK_MODEL, **overrides})
    import matplotlib
    backend = matplotlib.get_backend()
    try:
        train(config)
    finally:  # training saves its plots with the Agg backend; give a notebook its inline figures back
        if matplotlib.get_backend() != backend:
            import matplotlib.pyplot as plt
            plt.switch_backend(backend)
    return out / experiment / "best.pth"


def find_video(video_dir: str | os.PathLike | None, video_id: str) -> Path | None:
    """The original video of a sample, when a videos folder is given and holds ``<video_id>.<ext>``."""
    from datasets.extraction import DEFAULT_EXTENSIONS
    folder = resolve(video_dir)
    if folder is None or not folder.is_dir():
        return None
    for extension in DEFAULT_EXTENSIONS:
        candidate = folder / f"{video_id}.{extension}"
        if candidate.is_file():
            return candidate
    return None
