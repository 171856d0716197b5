"""A checkpoint made ready to embed data: the model plus the preprocessing it was trained with.

Evaluation, galleries, ``predict.py`` and the notebooks all embed through :class:`Embedder`,
so every embedding of a checkpoint goes through the same normalisation and frame limit
the training run used (read from the checkpoint, never from command-line defaults).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from augmentations.preprocess import DEFAULT_SETTINGS
from augmentations.torch_data import SignDataset
from datasets import layout
from datasets.errors import DataError
from datasets.sequences import SequenceSet
from models.checkpoint import load_checkpoint, model_from_checkpoint, preparation_settings

log = logging.getLogger(__name__)

# Clips per forward pass when embedding: on a CPU, 128 length-sorted clips use the matrix
# units about 40% better than 64 (bench/bench_evaluation.py) at a few hundred MB.
EMBED_BATCH = 128


class NoDetectionError(DataError):
    """An input in which MediaPipe found no person, or no hand, in any frame."""


@dataclass
class Embedder:
    """A model in eval mode and the exact preprocessing that goes with it."""

    model: torch.nn.Module
    settings: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_SETTINGS))  # clip preparation
    distance: str = "euclidean"           # the distance the model was trained with
    seed: int = 0                         # the training seed: the untrained twin's initialisation
    label_names: list[str] = dataclasses.field(default_factory=list)  # training vocabulary, for reference only
    name: str = "model"
    source: str = ""
    digest: str = ""
    device: str | torch.device = "cpu"
    epoch: int | None = None              # training epoch the weights come from, when recorded

    @property
    def metric(self) -> str:
        """The distance the model was trained with ("euclidean" or "cosine")."""
        return "cosine" if self.distance == "cosine" else "euclidean"

    def dataset(self, sequences: SequenceSet) -> SignDataset:
        """The evaluation view of ``sequences``: no augmentation, the checkpoint's normalisation."""
        return SignDataset(sequences, None, seed=self.seed, settings=self.settings)

    def embed(self, sequences: SequenceSet, batch_size: int = EMBED_BATCH, progress: bool = False,
              desc: str = "embedding") -> np.ndarray:
        """``(N, D)`` float32 embeddings of every sample of ``sequences``."""
        from evaluation.embedding import embed_dataset
        if len(sequences) == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        return embed_dataset(self.model, self.dataset(sequences), batch_size, self.device, progress, desc)

    def embed_raw(self, clips: Sequence[np.ndarray], batch_size: int = EMBED_BATCH,
                  progress: bool = False) -> np.ndarray:
        """Embed raw MediaPipe ``(T, 150)`` landmark arrays (what extraction writes)."""
        sequences = SequenceSet.from_sequences([layout.raw_to_spoter(c) for c in clips], np.zeros(len(clips)), ["?"])
        return self.embed(sequences, batch_size, progress)

    @property
    def embedding_dim(self) -> int:
        config = self.model.config
        return config.num_classes if config.classification else config.vector_length


def state_digest(state_dict: dict) -> str:
    """A short fingerprint of the weights: galleries record it so a mismatch can be caught."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(key.encode() + b"\0" + str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else tensor.float().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_embedder(path: str | Path, untrained: bool = False, device: str | torch.device = "cpu") -> Embedder:
    """Load a checkpoint for embedding; ``untrained=True`` gives its random-weight twin."""
    path = str(path)
    checkpoint = load_checkpoint(path)
    settings = preparation_settings(checkpoint, path)
    model = model_from_checkpoint(checkpoint, path)
    config = checkpoint["config"]
    embedder = Embedder(model.to(device).eval(), settings, str(config.get("distance", "euclidean")),
                        int(config.get("seed", 0)), [str(n) for n in checkpoint["label_names"]],
                        name="model", source=path, digest=state_digest(checkpoint["state_dict"]), device=device,
                        epoch=checkpoint.get("epoch") if isinstance(checkpoint.get("epoch"), int) else None)
    return untrained_twin(embedder) if untrained else embedder


def untrained_twin(embedder: Embedder) -> Embedder:
    """Same architecture and preprocessing, random weights drawn as training drew its initial ones.

    Training seeds torch with its ``seed`` before building the model, so this is the
    trained model's own starting point: the baseline that shows what training added.
    """
    from models.spoter import build_model
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(embedder.seed)
        model = build_model(embedder.model.config)
    return dataclasses.replace(embedder, model=model.to(embedder.device).eval(), name="untrained",
                               digest=state_digest(model.state_dict()))


def check_detections(raw: np.ndarray, name: str) -> None:
    """Refuse an input with no person or no hand in any frame: its embedding would be noise."""
    points = layout.raw_to_spoter(raw)                       # (T, 54, 2)
    present = ~layout.missing_mask(points)                   # (T, 54)
    frames = len(points)
    if not present[:, layout.BODY_SLICE].any():
        raise NoDetectionError(f"{name}: no person detected in any of its {frames} frames")
    if not any(present[:, hand].any() for hand in layout.HAND_SLICES):
        raise NoDetectionError(f"{name}: no hands detected in any of its {frames} frames "
                               "(the signer's hands must be visible)")


class VideoReader:
    """Turns video files into raw landmarks with the project's MediaPipe extraction (one graph, reused).

    Unless ``verbose``, the native start-up chatter of MediaPipe/TensorFlow on stderr is
    silenced, so the command's own one-line messages stay readable.
    """

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self._holistic = None

    def __call__(self, path: Path) -> np.ndarray:
        from datasets import extraction
        with self._quiet():
            if self._holistic is None:
                extraction.ensure_pose_model(extraction.BUNDLED_COMPLEXITY)
                self._holistic = _create_holistic(extraction)
            job = extraction.VideoJob(source=Path(path), relative=str(path), video=Path(path).stem)
            raw, _, _ = extraction.extract_video(job, self._holistic)
        return raw

    @contextlib.contextmanager
    def _quiet(self):
        if self.verbose:
            yield
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("GLOG_minloglevel", "2")
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)

    def close(self) -> None:
        if self._holistic is not None:
            with self._quiet():
                self._holistic.close()
            self._holistic = None


def _create_holistic(extraction):
    """mediapipe imports TensorFlow (when installed) only for a decorator; skip that 2-3 s import."""
    blocked = "tensorflow" not in sys.modules
    if blocked:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # import raises ModuleNotFoundError
    try:
        return extraction.create_holistic(extraction.BUNDLED_COMPLEXITY)
    finally:
        if blocked and sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]


def video_extensions() -> tuple[str, ...]:
    from datasets.extraction import DEFAULT_EXTENSIONS
    return tuple(f".{e}" for e in DEFAULT_EXTENSIONS)


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Inputs as given; a folder stands for the clips in it (sorted, not recursive).

    A clip is a landmark file of any format :mod:`datasets.formats` reads, a video, or an
    OpenPose folder (which is one clip, also when given itself).
    """
    from datasets import formats
    from datasets.errors import UsageError
    accepted = (*formats.FILE_SUFFIXES, *video_extensions())
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not formats.is_openpose_folder(path):
            found = sorted(p for p in path.iterdir() if not p.name.startswith(".") and (
                (p.is_file() and p.suffix.lower() in accepted and p.name not in INDEX_FILE_NAMES)
                or formats.is_openpose_folder(p)))
            if not found:
                raise UsageError(f"{path}: folder holds no landmark ({', '.join(formats.FILE_SUFFIXES)}, OpenPose "
                                 f"folder) or video ({', '.join(video_extensions())}) files")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


INDEX_FILE_NAMES = ("index.json",)  # a landmark folder's index is not a clip


def read_input(path: Path, videos: VideoReader, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """Raw ``(T, 150)`` landmarks of one input (a landmark file of any format, or a video), checked for a signer."""
    from datasets import formats
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.suffix.lower() in video_extensions() and path.is_file():
        raw = videos(path)
    elif path.is_dir() or path.suffix.lower() in formats.FILE_SUFFIXES:
        raw = formats.read_clip(path, frame_size).raw
    else:
        raise DataError(f"{path}: expected a landmark file ({', '.join(formats.FILE_SUFFIXES)}), an OpenPose "
                        f"folder or a video ({', '.join(video_extensions())})")
    check_detections(raw, str(path))
    return raw
