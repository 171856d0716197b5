"""Fixtures of the bad-input corpus (the helpers are in :mod:`tests.robustness.corpus`)."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory) -> dict:
    """Environment of the entry points: own dataset cache, one thread each (two run at once)."""
    env = dict(os.environ)
    env.update(SPOTER_CACHE_DIR=str(tmp_path_factory.mktemp("corpus-cache")), OMP_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONDONTWRITEBYTECODE="1")
    env.pop("SPOTER_DEBUG", None)
    return env


@pytest.fixture(scope="session")
def corpus_gallery(tiny_checkpoint, tiny_synthetic_dataset, tmp_path_factory):
    """A good gallery ``.npz`` (every clip of the tiny dataset, embedded by the tiny checkpoint)."""
    from datasets.loading import load_sequence_set
    from evaluation.gallery import build_gallery
    from evaluation.inference import load_embedder
    path = tmp_path_factory.mktemp("corpus-gallery") / "gallery.npz"
    build_gallery(load_embedder(tiny_checkpoint), load_sequence_set(tiny_synthetic_dataset, cache=False)).save(path)
    return path
