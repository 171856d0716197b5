"""Personal dictionary documents (the web demo's export format) for the tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from datasets.personal_dictionary import FORMAT
from datasets.synthetic import generate_signs


def dictionary_doc(dim: int = 4, digest: str = "0123456789abcdef", metric: str = "euclidean", seed: int = 0) -> dict:
    """A small, valid export: three clips of two glosses (two by one signer)."""
    samples = generate_signs(num_classes=2, num_signers=2, samples_per_class_per_signer=1, seed=seed)[:3]
    rng = np.random.default_rng(seed)
    glosses = ["my-sign", "other", "my-sign"]
    return {
        "format": FORMAT, "version": 1, "model_digest": digest, "metric": metric, "embedding_dim": dim,
        "signs": [{"gloss": g, "video_id": f"clip{i}", "signer_id": "me" if i < 2 else "",
                   "embedding": rng.standard_normal(dim).tolist(), "landmarks": s.raw.tolist()}
                  for i, (g, s) in enumerate(zip(glosses, samples))],
    }


def write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path
