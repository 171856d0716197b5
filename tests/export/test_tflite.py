"""--tflite: onnx2tf + TensorFlow conversion, builtin ops only, LiteRT output equal to PyTorch."""
import json

import numpy as np
import pytest
import torch

from datasets import layout
from datasets.errors import DataError, UsageError
from export import tflite_export
from export.validate import random_batch

FRAMES = 37


@pytest.fixture(scope="module")
def tflite_folder(small_checkpoint, tmp_path_factory):
    missing = tflite_export.missing_conversion_packages()  # not importorskip: importing onnx2tf loads TensorFlow
    if missing:
        pytest.skip(f"needs conversion_requirements.txt ({', '.join(missing)} missing)")
    from export.pipeline import convert
    out = tmp_path_factory.mktemp("tflite")
    lines = []
    convert(small_checkpoint, out, tflite=True, frames=FRAMES, fp16=True, report=lines.append)
    return out, lines


@pytest.mark.conversion
@pytest.mark.slow
def test_tflite_runs_in_litert_and_matches_pytorch(tflite_folder, small_model):
    from ai_edge_litert.interpreter import Interpreter
    folder, lines = tflite_folder
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    interpreter.allocate_tensors()
    inputs = {d["name"]: d for d in interpreter.get_input_details()}
    assert set(inputs) == {"landmarks", "padding_mask"}
    assert list(inputs["landmarks"]["shape"]) == [1, FRAMES, layout.NUM_POINTS, layout.NUM_COORDS]
    assert list(inputs["padding_mask"]["shape"]) == [1, FRAMES] and inputs["padding_mask"]["dtype"] == np.bool_
    rng = np.random.default_rng(5)
    for padded in (False, True):
        landmarks, mask = random_batch(rng, 1, FRAMES, padded)
        interpreter.set_tensor(inputs["landmarks"]["index"], landmarks)
        interpreter.set_tensor(inputs["padding_mask"]["index"], mask)
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        with torch.no_grad():
            expected = small_model(torch.from_numpy(landmarks), torch.from_numpy(mask)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    printed = "\n".join(lines).splitlines()
    assert any(line.startswith("tflite: PASS") for line in printed)
    assert any(line.startswith("tflite-fp16: PASS") for line in printed)


@pytest.mark.conversion
@pytest.mark.slow
def test_a_model_with_hand_shapes_and_temporal_conv_converts_to_builtin_ops_and_matches_pytorch(make_checkpoint, tmp_path):
    missing = tflite_export.missing_conversion_packages()
    if missing:
        pytest.skip(f"needs conversion_requirements.txt ({', '.join(missing)} missing)")
    from export.pipeline import convert
    checkpoint = make_checkpoint(temporal_conv_blocks=2, temporal_conv_kernel=5, hand_shape_features=True,
                                 normalize_embeddings=True)
    lines = []
    convert(checkpoint, tmp_path / "out", tflite=True, frames=FRAMES, report=lines.append)
    printed = "\n".join(lines).splitlines()
    assert any(line.startswith("tflite: PASS") for line in printed)  # LiteRT output checked against PyTorch
    builtin, custom = tflite_export.tflite_operators(tmp_path / "out" / "model.tflite")
    assert custom == [] and not any(op.startswith("FLEX") for op in builtin)
    assert {"DEPTHWISE_CONV_2D", "CONV_2D"} & set(builtin)


@pytest.mark.conversion
@pytest.mark.slow
def test_tflite_has_builtin_ops_only_and_is_in_model_json(tflite_folder):
    folder, _ = tflite_folder
    builtin, custom = tflite_export.tflite_operators(folder / "model.tflite")
    assert custom == [] and not any(op.startswith("FLEX") for op in builtin)
    assert {"FULLY_CONNECTED", "SOFTMAX"} <= set(builtin)
    _, custom16 = tflite_export.tflite_operators(folder / "model_fp16.tflite")
    assert custom16 == []
    doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    entry = doc["files"]["tflite"]
    assert entry["file"] == "model.tflite" and entry["fp16_file"] == "model_fp16.tflite"
    assert entry["frames"] == FRAMES and entry["batch"] == 1
    assert doc["validation"]["tflite"]["passed"] and doc["validation"]["tflite"]["max_abs_diff"] < 1e-4
    assert doc["validation"]["tflite-fp16"]["passed"]


def test_flex_ops_are_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(tflite_export, "tflite_operators", lambda path: (["ADD"], ["FlexErf"]))
    with pytest.raises(DataError, match="Flex .*FlexErf"):
        tflite_export.check_builtin_only(tmp_path / "m.tflite")


def test_missing_conversion_packages_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(tflite_export.CONVERSION_PACKAGES, "no_such_module_for_tests", "no-such-dist")
    with pytest.raises(UsageError, match="no-such-dist.*conversion_requirements.txt"):
        tflite_export.require_conversion_packages()
