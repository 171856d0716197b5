"""Untrusted model files: checkpoints met by ``evaluate.py``, ``predict.py``, ``convert.py`` and
``train.py`` (``--init_checkpoint`` and ``--resume``), galleries met by ``predict.py``.

A checkpoint holding a pickle that would run code (``__reduce__`` -> ``os.system``) must be
refused by ``torch.load(weights_only=True)`` before anything runs: the test's marker file
must never appear. A gallery ``.npz`` holding object arrays must be refused by
``np.load(allow_pickle=False)``.
"""
from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.robustness.corpus import TINY_TRAIN, assert_clean_failure, run_many

CONSUMERS = ("evaluate", "predict", "convert", "init_checkpoint", "resume")


class RunsCode:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _other_architecture(tiny_checkpoint: Path, path: Path) -> Path:
    """The tiny checkpoint's weights under a model_config of another architecture (2 encoder layers)."""
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload["model_config"] = {**payload["model_config"], "num_encoder_layers": 2, "vector_length": 24}
    payload["config"] = {**payload["config"], "num_encoder_layers": 2, "vector_length": 24}
    torch.save(payload, path)
    return path


def _foreign_weights(path: Path) -> Path:
    """A real torch file, but another program's: a bare state dict."""
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.bias": torch.zeros(10)}, path)
    return path


def _bytes(content: bytes):
    def build(tiny_checkpoint: Path, path: Path, marker: Path) -> Path:
        path.write_bytes(content)
        return path
    return build


def _truncated(tiny_checkpoint: Path, path: Path, marker: Path) -> Path:
    path.write_bytes(tiny_checkpoint.read_bytes()[:3000])
    return path


def _code_in_zip(tiny_checkpoint: Path, path: Path, marker: Path) -> Path:
    """torch.save's own format, with the payload in its data.pkl."""
    torch.save({"state_dict": RunsCode(marker), "config": {}, "model_config": {}, "label_names": []}, path)
    return path


def _code_in_pickle(tiny_checkpoint: Path, path: Path, marker: Path) -> Path:
    """The legacy format: a bare pickle."""
    path.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}, protocol=2))
    return path


# name -> (builder(tiny_checkpoint, path, marker) -> path, words of the expected reason)
CHECKPOINTS = {
    "garbage": (_bytes(np.random.default_rng(1).bytes(4096)), "not a loadable checkpoint"),
    "empty": (_bytes(b""), "empty file"),
    "truncated": (_truncated, "not a loadable checkpoint"),
    "code_in_zip": (_code_in_zip, "refused"),
    "code_in_pickle": (_code_in_pickle, "refused"),
    "other_architecture": (lambda ck, path, marker: _other_architecture(ck, path), None),
    "foreign_weights": (lambda ck, path, marker: _foreign_weights(path), "missing"),
}
# The message for another architecture differs by consumer (each names what does not fit).
OTHER_ARCHITECTURE = {"evaluate": "does not match its model config", "predict": "does not match its model config",
                      "convert": "does not match its model config", "init_checkpoint": "do not fit this architecture",
                      "resume": "cannot resume from it"}
EXIT = {"init_checkpoint": {"other_architecture": 2}}  # a usage error: the flag asks for the impossible


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


GALLERIES = {
    "object_arrays": (lambda: _npz(embeddings=np.zeros((2, 8), np.float32), labels=np.array([0, 1]),
                                   label_names=np.array(["a", {"b": 1}], dtype=object)), "pickles are refused"),
    "missing_arrays": (lambda: _npz(embeddings=np.zeros((2, 8), np.float32)), "missing labels, label_names"),
    "wrong_dimensions": (lambda: _npz(embeddings=np.zeros((2, 5), np.float32), labels=np.array([0, 1]),
                                      label_names=np.array(["a", "b"])), "5 dimensions"),
    "nan_embeddings": (lambda: _npz(embeddings=np.full((2, 8), np.nan, np.float32), labels=np.array([0, 1]),
                                    label_names=np.array(["a", "b"])), "NaN"),
    "truncated": (lambda: _npz(embeddings=np.zeros((50, 8), np.float32), labels=np.zeros(50, np.int64),
                               label_names=np.array(["a"]))[:300], "not a readable .npz gallery"),
    # random bytes are neither a zip nor a .npy, so np.load takes them for a pickle; the message
    # must say the file is not a gallery, not that it holds Python objects
    "garbage": (lambda: b"\x01\x02 this is not a gallery " * 20, "not a"),
}


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("marker") / "code-ran"


@pytest.fixture(scope="module")
def files(tiny_checkpoint, marker, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-checkpoints")
    made = {name: build(tiny_checkpoint, root / f"{name}.pth", marker) for name, (build, _) in CHECKPOINTS.items()}
    for name, (build, _) in GALLERIES.items():
        made[f"gallery-{name}"] = root / f"{name}.npz"
        made[f"gallery-{name}"].write_bytes(build())
    assert not marker.exists()
    return made


@pytest.fixture(scope="module")
def results(files, tiny_checkpoint, tiny_synthetic_dataset, corpus_gallery, corpus_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-checkpoints-out")
    clip = sorted((tiny_synthetic_dataset / "landmarks").glob("*.npy"))[0]
    data = str(tiny_synthetic_dataset / "tiny_train.csv")
    good_gallery = corpus_gallery
    commands = {}
    for name in CHECKPOINTS:
        path = str(files[name])
        commands[f"evaluate-{name}"] = ["evaluate.py", "--checkpoint", path, "--gallery", data, "--quiet"]
        commands[f"predict-{name}"] = ["predict.py", "--checkpoint", path, "--gallery", str(good_gallery), str(clip)]
        commands[f"convert-{name}"] = ["convert.py", "-c", path, "--output-folder", str(out / f"convert-{name}")]
        commands[f"init_checkpoint-{name}"] = ["train.py", "--training_set_path", data, "--init_checkpoint", path,
                                               "--out_dir", str(out / f"init-{name}"), *TINY_TRAIN]
        run_dir = out / f"resume-{name}" / "run"
        run_dir.mkdir(parents=True)
        shutil.copy(files[name], run_dir / "last.pth")
        commands[f"resume-{name}"] = ["train.py", "--training_set_path", data, "--resume", "--out_dir",
                                      str(out / f"resume-{name}"), "--experiment_name", "run", *TINY_TRAIN]
    for name in GALLERIES:
        commands[f"gallery-{name}"] = ["predict.py", "--checkpoint", str(tiny_checkpoint), "--gallery",
                                       str(files[f"gallery-{name}"]), str(clip)]
    return run_many(commands, corpus_env), out


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_bad_checkpoint_is_refused_in_one_line(results, files, name, consumer):
    words = CHECKPOINTS[name][1] or OTHER_ARCHITECTURE[consumer]
    path = files[name] if consumer != "resume" else results[1] / f"resume-{name}" / "run" / "last.pth"
    assert_clean_failure(results[0][f"{consumer}-{name}"], EXIT.get(consumer, {}).get(name, 1), str(path), words)


def test_no_checkpoint_ran_code(results, marker):
    assert not marker.exists(), "a pickled checkpoint ran code while being loaded"


@pytest.mark.parametrize("name", sorted(GALLERIES))
def test_bad_gallery_is_refused_in_one_line(results, files, name):
    run = results[0][f"gallery-{name}"]
    assert_clean_failure(run, 1, str(files[f"gallery-{name}"]), GALLERIES[name][1])
    if name == "garbage":
        assert "pickle" not in run.last, run.describe()
