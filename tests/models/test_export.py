"""The model exports with torch.onnx.export(dynamo=True) keeping batch AND frames dynamic."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from datasets import layout
from models import build_model


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*axis name.*:UserWarning", "ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.parametrize("pe", ["learned", "sinusoidal"])
def test_onnx_export_dynamic_batch_and_frames_matches_eager(tmp_path, pe):
    model = build_model(dict(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64,
                             positional_encoding=pe, normalize_embeddings=True)).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 8, layout.NUM_POINTS, layout.NUM_COORDS, generator=g)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[1, 5:] = True
    batch, frames = torch.export.Dim("batch"), torch.export.Dim("frames")
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x, mask), str(path), dynamo=True, input_names=["x", "pad_mask"],
                      output_names=["embedding"], dynamic_shapes=({0: batch, 1: frames}, {0: batch, 1: frames}))
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "ReduceL2" not in ops  # the ONNX->TFLite route cannot convert it
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in [(1, 3), (3, 20), (2, 64)]:
        xx = torch.rand(b, t, layout.NUM_POINTS, layout.NUM_COORDS, generator=g)
        mm = torch.zeros(b, t, dtype=torch.bool)
        mm[0, t // 2 + 1:] = True
        with torch.no_grad():
            expected = model(xx, mm).numpy()
        (got,) = session.run(None, {"x": xx.numpy(), "pad_mask": mm.numpy()})
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
