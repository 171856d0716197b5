"""--quantize int8: a smaller, still dynamic model, and a drift/kNN report that can show a change."""
import json

import numpy as np
import onnx
import pytest

from datasets import layout
from export.quantize import drift_report, int8_report, synthetic_sequences, validation_clips
from export.validate import onnx_session


@pytest.fixture(scope="module")
def folder(converted):
    return converted[0]


@pytest.mark.slow
def test_int8_model_is_quantised_smaller_and_dynamic(folder):
    fp32, int8 = folder / "model.onnx", folder / "model_int8.onnx"
    assert int8.stat().st_size < 0.75 * fp32.stat().st_size
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    session = onnx_session(int8)
    for batch, frames in [(1, 5), (3, 61)]:
        x = np.zeros((batch, frames, layout.NUM_POINTS, layout.NUM_COORDS), np.float32)
        out = session.run(None, {"landmarks": x, "padding_mask": np.zeros((batch, frames), bool)})[0]
        assert out.shape == (batch, 32) and np.isfinite(out).all()


@pytest.mark.slow
def test_int8_report_in_model_json(folder):
    report = json.loads((folder / "model.json").read_text(encoding="utf-8"))["validation"]["int8"]
    assert report["validation_set"].startswith("synthetic")
    assert report["samples"] == len(synthetic_sequences())
    assert 0 < report["max_abs_diff"] < 0.1 and report["mean_abs_diff"] <= report["max_abs_diff"]
    assert 0.99 < report["cosine_min"] <= report["cosine_mean"] <= 1.0
    assert report["top1_change_points"] == pytest.approx(100 * (report["top1_int8"] - report["top1_fp32"]), abs=1e-3)


def test_drift_report_sees_identical_and_changed_embeddings():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 4)
    centres = rng.normal(size=(5, 8)) * 5
    emb = (centres[labels] + rng.normal(size=(20, 8)) * 0.1).astype(np.float32)
    ids = np.asarray([f"v{i}" for i in range(20)])
    same = drift_report(emb, emb.copy(), labels, ids)
    assert same["max_abs_diff"] == 0 and same["top1_fp32"] == 1.0 == same["top1_int8"]
    assert same["cosine_min"] == pytest.approx(1.0) and same["predictions_changed"] == 0
    shuffled = emb[rng.permutation(20)]  # labels no longer match: recognition collapses
    changed = drift_report(emb, shuffled, labels, ids)
    assert changed["top1_int8"] < 0.6 and changed["top1_change_points"] < -40
    assert changed["predictions_changed"] > 0.3 and changed["cosine_min"] < 0.9


def test_validation_set_from_a_spoter_csv(tmp_path, folder, expected_metadata):
    from datasets.spoter_csv import write_spoter_csv
    sequences = synthetic_sequences(num_classes=4, num_signers=2, samples_per_class_per_signer=2)
    path = tmp_path / "val.csv"
    write_spoter_csv(sequences, path)
    data = validation_clips(expected_metadata["normalization"], path)
    assert len(data.clips) == len(sequences) == 16 and data.source == str(path)
    assert all(c.shape[1:] == (layout.NUM_POINTS, layout.NUM_COORDS) for c in data.clips)
    report = int8_report(folder / "model.onnx", folder / "model_int8.onnx", data)
    assert report["samples"] == 16 and report["classes"] == 4


def test_real_dev_as_validation_set(real_dev_dir, folder, expected_metadata):
    data = validation_clips(expected_metadata["normalization"], real_dev_dir)
    assert len(data.clips) > 100
    report = int8_report(folder / "model.onnx", folder / "model_int8.onnx", data)
    assert report["cosine_min"] > 0.99 and np.isfinite(report["top1_fp32"])


def test_validation_clips_follow_the_checkpoint_settings(expected_metadata):
    from augmentations.preprocess import prepare
    settings = {**expected_metadata["normalization"], "canonical_handedness": True, "resample_frames": 24}
    data = validation_clips(settings)
    sequences = synthetic_sequences()
    assert all(len(c) == 24 for c in data.clips)
    for i in (0, len(sequences) - 1):
        np.testing.assert_array_equal(data.clips[i], prepare(sequences.sequence(i), settings))
    plain = validation_clips({**settings, "canonical_handedness": False})
    assert any(not np.array_equal(a, b) for a, b in zip(data.clips, plain.clips))  # left-handed signers mirrored
