"""convert.py's ONNX: dynamic batch and frames, matches PyTorch, padding ignored, validation can fail."""
import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from datasets import layout
from datasets.errors import UsageError
from export.onnx_export import INPUT_NAMES, OUTPUT_NAME, check_opset, export_onnx
from export.validate import ValidationError, compare, frames_for, grid, random_batch, validate_onnx

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def onnx_path(converted):
    return converted[0] / "model.onnx"


@pytest.fixture(scope="module")
def session(onnx_path):
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


def run(session, landmarks, mask):
    return session.run(None, {"landmarks": landmarks, "padding_mask": mask})[0]


def torch_embed(model, landmarks, mask):
    with torch.no_grad():
        return model(torch.from_numpy(landmarks), torch.from_numpy(mask)).numpy()


def test_graph_interface_is_dynamic_and_checked(onnx_path):
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in model.graph.input] == list(INPUT_NAMES) == ["landmarks", "padding_mask"]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME] == ["embedding"]
    landmarks, mask = model.graph.input
    assert landmarks.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert mask.type.tensor_type.elem_type == onnx.TensorProto.BOOL
    dims = [d.dim_param or d.dim_value for d in landmarks.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and isinstance(dims[1], str)  # batch, frames symbolic
    assert dims[2:] == [layout.NUM_POINTS, layout.NUM_COORDS]
    assert not list(onnx_path.parent.glob("*.data"))  # weights inside the one file


def test_batch_of_three_37_frames_with_mask_matches_pytorch(session, small_model):
    rng = np.random.default_rng(1)
    landmarks = rng.uniform(-0.5, 0.5, (3, 37, layout.NUM_POINTS, layout.NUM_COORDS)).astype(np.float32)
    mask = np.zeros((3, 37), bool)
    mask[1, 20:] = True
    mask[2, 5:] = True
    got = run(session, landmarks, mask)
    assert got.shape == (3, small_model.config.vector_length)
    np.testing.assert_allclose(got, torch_embed(small_model, landmarks, mask), atol=1e-5, rtol=0)


def test_single_300_frame_clip_matches_pytorch(session, small_model):
    rng = np.random.default_rng(2)
    landmarks = rng.uniform(-0.5, 0.5, (1, 300, layout.NUM_POINTS, layout.NUM_COORDS)).astype(np.float32)
    mask = np.zeros((1, 300), bool)
    np.testing.assert_allclose(run(session, landmarks, mask), torch_embed(small_model, landmarks, mask),
                               atol=1e-5, rtol=0)


def test_padded_equals_truncated_in_onnxruntime(session):
    rng = np.random.default_rng(3)
    lengths = [40, 12, 1]
    landmarks = rng.uniform(-0.5, 0.5, (3, 40, layout.NUM_POINTS, layout.NUM_COORDS)).astype(np.float32)
    mask = np.arange(40)[None, :] >= np.asarray(lengths)[:, None]
    landmarks[mask] = 123.0  # garbage in padded frames must not leak
    padded = run(session, landmarks, mask)
    for row, n in enumerate(lengths):
        alone = run(session, landmarks[row: row + 1, :n], np.zeros((1, n), bool))
        np.testing.assert_allclose(padded[row], alone[0], atol=1e-5, rtol=0)
    # and padding does change what an unmasked model would see: the check is not vacuous
    unmasked = run(session, landmarks, np.zeros_like(mask))
    assert np.abs(unmasked[1] - padded[1]).max() > 1e-3


def test_built_in_validation_covers_the_grid_and_passes(onnx_path, small_model):
    table = validate_onnx(small_model, onnx_path)
    assert {(r.batch, r.frames, r.padded) for r in table.rows} == set(grid())
    assert {r.batch for r in table.rows} == {1, 2, 3, 4} and {r.frames for r in table.rows} == {1, 37, 100, 300}
    assert table.passed and table.max_abs_diff < 1e-4
    text = table.format()
    assert "PASS" in text and len(text.splitlines()) == len(table.rows) + 2


def test_validation_fails_for_a_model_that_differs(onnx_path, small_model):
    other = copy.deepcopy(small_model)
    with torch.no_grad():
        other.head.bias.add_(1e-3)  # tiny change, still far beyond 1e-4
    table = validate_onnx(other, onnx_path, batches=(2,), frames=(5,))
    assert not table.passed and table.failures()
    assert "FAIL" in table.format()
    with pytest.raises(ValidationError, match="differs from PyTorch"):
        table.raise_on_failure(onnx_path)


def test_a_runtime_error_is_a_validation_error(small_model):
    def broken(landmarks, mask):
        raise RuntimeError("Non-zero status code returned while running Attention node\nmore detail")
    with pytest.raises(ValidationError, match="failed on batch 2, frames 5: Non-zero status code"):
        compare(small_model, broken, "onnxruntime", [(2, 5, False)])


def test_grid_stops_at_the_models_positional_table():
    from models.spoter import SpoterConfig, build_model
    trained_default = build_model(SpoterConfig(num_encoder_layers=1, num_decoder_layers=1, max_frames=256))
    assert frames_for(trained_default) == ([1, 37, 100, 256], [300])
    long_table = build_model(SpoterConfig(num_encoder_layers=1, num_decoder_layers=1, max_frames=512))
    assert frames_for(long_table) == ([1, 37, 100, 300], [])
    any_length = build_model(SpoterConfig(num_encoder_layers=1, num_decoder_layers=1, max_frames=8,
                                          positional_encoding="sinusoidal"))
    assert frames_for(any_length) == ([1, 37, 100, 300], [])


def test_random_batch_pads_every_row_but_the_first():
    landmarks, mask = random_batch(np.random.default_rng(0), 4, 10, padded=True)
    assert landmarks.shape == (4, 10, layout.NUM_POINTS, layout.NUM_COORDS) and landmarks.dtype == np.float32
    assert not mask[0].any() and mask[1:].any(1).all() and (~mask).any(1).all()
    _, single = random_batch(np.random.default_rng(0), 1, 10, padded=True)
    assert single.any() and not single.all()


def test_export_onnx_function_writes_a_validated_model(small_checkpoint, tmp_path):
    path = export_onnx(small_checkpoint, tmp_path / "out", opset=18)
    assert path == tmp_path / "out" / "model.onnx"
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]


@pytest.mark.parametrize("opset", [11, 16, 23])
def test_unsupported_opset_is_a_usage_error(opset):
    with pytest.raises(UsageError, match="opset"):
        check_opset(opset)


def test_a_model_with_hand_shapes_and_temporal_conv_exports_with_dynamic_frames_and_matches_pytorch(make_checkpoint, tmp_path):
    from models.checkpoint import load_checkpoint, model_from_checkpoint
    checkpoint = make_checkpoint(temporal_conv_blocks=2, temporal_conv_kernel=5, hand_shape_features=True,
                                 normalize_embeddings=True)
    path = export_onnx(checkpoint, tmp_path / "out")  # raises if onnxruntime and PyTorch disagree
    assert "Conv" in {node.op_type for node in onnx.load(str(path)).graph.node}
    model = model_from_checkpoint(load_checkpoint(checkpoint))
    assert model.body.temporal_conv is not None and model.body.hand_shape is not None
    table = validate_onnx(model, path)  # batches 1-4, 1-300 frames, padded and not
    assert table.passed and table.max_abs_diff < 1e-4
