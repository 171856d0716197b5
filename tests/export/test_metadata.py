"""model.json: what a consumer needs, taken from the checkpoint and the layout module."""
import hashlib
import json

import pytest

from datasets import layout
from export.metadata import build_model_json, write_model_json
from export.source import load_source


@pytest.fixture(scope="module")
def model_json(converted) -> dict:
    return json.loads((converted[0] / "model.json").read_text(encoding="utf-8"))


def test_model_json_describes_the_exported_model(model_json, small_checkpoint, expected_metadata):
    assert model_json["vector_length"] == 32
    assert model_json["l2_normalized"] is True
    assert model_json["label_names"] == expected_metadata["labels"]
    assert model_json["normalization"] == expected_metadata["normalization"]
    assert model_json["opset"] == 17
    assert model_json["source_checkpoint"]["sha256"] == hashlib.sha256(small_checkpoint.read_bytes()).hexdigest()
    assert model_json["source_checkpoint"]["file"] == "small.pth"
    assert model_json["files"]["onnx"] == "model.onnx" and model_json["files"]["onnx_int8"] == "model_int8.onnx"
    assert [i["name"] for i in model_json["inputs"]] == ["landmarks", "padding_mask"]
    assert [o["name"] for o in model_json["outputs"]] == ["embedding"]
    assert model_json["inputs"][0]["shape"] == ["batch", "frames", layout.NUM_POINTS, layout.NUM_COORDS]
    assert model_json["inputs"][1]["dtype"] == "bool"


def test_model_json_names_the_weights_as_galleries_do(model_json, small_checkpoint):
    """The web page stamps own signs with this digest; predict.py compares it with its checkpoint's."""
    from evaluation.inference import load_embedder
    assert model_json["model_digest"] == load_embedder(small_checkpoint).digest


def test_layout_is_the_core_layout_module(model_json):
    assert model_json["layout"] == json.loads(json.dumps(layout.layout_spec()))
    assert model_json["layout"]["spoter"]["point_names"] == list(layout.POINT_NAMES)


def test_validation_results_and_nan_free_json(model_json, converted):
    onnx_summary = model_json["validation"]["onnx"]
    assert onnx_summary["passed"] is True and onnx_summary["max_abs_diff"] < 1e-4
    assert onnx_summary["frames"] == [1, 37, 100, 300] and onnx_summary["batches"] == [1, 2, 3, 4]
    assert onnx_summary["graph"] == "streamlined"
    assert model_json["metrics"]["val_silhouette"] is None  # NaN in the checkpoint -> null, still valid JSON
    text = (converted[0] / "model.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text


def test_unnormalised_model_without_labels(make_checkpoint):
    path = make_checkpoint(lambda p: p.update(label_names=[]), normalize_embeddings=False,
                           positional_encoding="sinusoidal")
    source = load_source(path)
    doc = build_model_json(source, opset=18)
    assert doc["l2_normalized"] is False and doc["label_names"] == [] and doc["opset"] == 18
    assert doc["max_input_frames"] is None  # sinusoidal positions: any length


def test_write_model_json_accepts_a_checkpoint_path(small_checkpoint, tmp_path):
    path = write_model_json(small_checkpoint, tmp_path, files={"tflite": {"file": "model.tflite", "frames": 100}})
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["files"] == {"onnx": "model.onnx", "tflite": {"file": "model.tflite", "frames": 100}}
    assert doc["max_input_frames"] == 512
