"""Small checkpoints (1+1 layers, ff 64) and one converted folder shared by the export tests."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from models.checkpoint import save_checkpoint
from models.spoter import SpoterConfig, build_model

SMALL = {"num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 64}
NORMALIZATION = {"body": "centered", "hands": True, "resample_frames": 0, "max_frames": 256}
LABELS = ["hello", "thanks", "yes"]


def checkpoint_payload(seed: int = 0, **config) -> dict:
    """What training saves, for a small model with seeded random weights.

    Every tensor is made distinct, as training does (a fresh model's layers are copies
    of one layer, norms/biases are 1/0): equal tensors let converters merge them, which
    hid a TFLite conversion fault.
    """
    torch.manual_seed(seed)
    cfg = SpoterConfig(**{**SMALL, **config})
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.2 if "norm" in name or "bias" in name else 0.02))
    return {
        "state_dict": model.state_dict(), "config": {"distance": "euclidean", "normalization": "centered"},
        "model_config": asdict(cfg), "label_names": list(LABELS), "normalization": dict(NORMALIZATION),
        "metrics": {"val_knn_1": 0.5, "val_silhouette": float("nan")}, "epoch": 7,
    }


def write_checkpoint(path: Path, payload: dict) -> Path:
    save_checkpoint(path, payload)
    return path


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory):
    """``make_checkpoint(edit=None, **config)`` -> path of a new small checkpoint;
    ``edit(payload)`` may change the payload before it is saved."""
    folder = tmp_path_factory.mktemp("checkpoints")
    count = iter(range(10**6))

    def make(edit=None, **config) -> Path:
        payload = checkpoint_payload(**config)
        if edit is not None:
            edit(payload)
        return write_checkpoint(folder / f"checkpoint_{next(count)}.pth", payload)
    return make


@pytest.fixture(scope="session")
def expected_metadata() -> dict:
    return {"labels": list(LABELS), "normalization": dict(NORMALIZATION)}


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory) -> Path:
    """Unit-length embeddings, learned positions: the configuration the web demo uses."""
    path = tmp_path_factory.mktemp("ckpt") / "small.pth"
    return write_checkpoint(path, checkpoint_payload(normalize_embeddings=True))


@pytest.fixture(scope="session")
def small_model(small_checkpoint):
    from models.checkpoint import load_checkpoint, model_from_checkpoint
    return model_from_checkpoint(load_checkpoint(small_checkpoint))


@pytest.fixture(scope="session")
def converted(small_checkpoint, tmp_path_factory, repo_root) -> tuple[Path, subprocess.CompletedProcess]:
    """``convert.py -c small.pth --output-folder F --quantize int8`` run as a user would."""
    out = tmp_path_factory.mktemp("converted") / "F"
    done = subprocess.run([sys.executable, str(repo_root / "convert.py"), "-c", str(small_checkpoint),
                           "--output-folder", str(out), "--quantize", "int8"],
                          cwd=repo_root, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done
