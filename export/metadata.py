"""``model.json``: everything a consumer (web page, app, predict script) needs beside the model file.

Layout and normalisation come from the checkpoint and the core layout module, never
restated here, so the exported description cannot drift from what the model was
trained on.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from datasets import layout
from datasets.atomic import atomic_write
from export.onnx_export import INPUT_NAMES, MIN_OPSET, ONNX_FILE, OUTPUT_NAME
from export.source import load_source, make_readable

MODEL_JSON = "model.json"
FORMAT_VERSION = 1


def _plain(value):
    """JSON-safe copy: non-finite floats become null (JSON has no NaN), tuples become lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _plain(value.item())
    return value


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def _state_digest(state_dict: dict) -> str:
    from evaluation.inference import state_digest
    return state_digest(state_dict)


def io_spec(vector_length: int, frames: int | str = "frames", batch: int | str = "batch") -> dict:
    """Input/output names, dtypes and shapes (a string = dynamic axis)."""
    return {
        "inputs": [
            {"name": INPUT_NAMES[0], "dtype": "float32", "shape": [batch, frames, layout.NUM_POINTS, layout.NUM_COORDS],
             "description": "normalised SPOTER landmarks, see layout.spoter and normalization"},
            {"name": INPUT_NAMES[1], "dtype": "bool", "shape": [batch, frames],
             "description": "True = padded frame (ignored); every clip needs one valid frame"},
        ],
        "outputs": [{"name": OUTPUT_NAME, "dtype": "float32", "shape": [batch, "vector_length"]}],
    }


def build_model_json(source, opset: int = MIN_OPSET, files: dict | None = None,
                     validation: dict | None = None) -> dict:
    """The model.json document for an :class:`export.source.ExportSource`."""
    config = source.config
    doc = {
        "format_version": FORMAT_VERSION,
        "task": "sign_embedding",
        "vector_length": config.vector_length,
        "l2_normalized": bool(config.normalize_embeddings),
        "distance": "cosine" if config.normalize_embeddings else "euclidean",
        # Longest clip the model accepts (its learned positional table); null = any length.
        "max_input_frames": config.max_frames if config.positional_encoding == "learned" else None,
        "opset": opset,
        **io_spec(config.vector_length),
        "layout": layout.layout_spec(),
        "normalization": source.normalization,
        "label_names": source.label_names,
        "files": {"onnx": ONNX_FILE, **(files or {})},
        "source_checkpoint": {"file": source.path.name, "sha256": source.sha256,
                              "epoch": source.checkpoint.get("epoch")},
        # The weights' fingerprint as galleries record it (evaluation.inference.state_digest), so
        # embeddings made from this export (web page, personal dictionaries) name their model.
        "model_digest": _state_digest(source.checkpoint["state_dict"]),
        "model_config": asdict(config),
        "metrics": {k: v for k, v in (source.checkpoint.get("metrics") or {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "validation": validation or {},
        "exported_with": _versions(),
    }
    training_distance = (source.checkpoint.get("config") or {}).get("distance")
    if training_distance:
        doc["distance"] = training_distance  # the metric the model was trained (and evaluated) with
    return doc


def write_model_json(source, out_dir: str | os.PathLike, opset: int = MIN_OPSET, files: dict | None = None,
                     validation: dict | None = None) -> Path:
    """Write ``out_dir/model.json`` atomically; ``source`` is an ExportSource or a checkpoint path."""
    if not hasattr(source, "config"):
        source = load_source(source)
    doc = _plain(build_model_json(source, opset, files, validation))
    path = Path(out_dir) / MODEL_JSON
    with atomic_write(path, "w") as handle:
        json.dump(doc, handle, indent=2, allow_nan=False)
        handle.write("\n")
    return make_readable(path)
