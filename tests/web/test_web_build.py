"""web/build.py: the demo folder holds the layout source of truth, the model, a gallery and samples."""
from __future__ import annotations

import json

import numpy as np
import pytest

from augmentations import normalization
from datasets import layout

def test_web_build_writes_layout_from_the_source_of_truth(demo_public):
    doc = json.loads((demo_public / "layout.json").read_text())
    assert doc["layout"] == json.loads(json.dumps(layout.layout_spec()))
    assert doc["normalization"]["hand_box_padding"] == normalization.HAND_BOX_PADDING
    assert doc["normalization"]["signing_space_head_units"] == normalization.SIGNING_SPACE_HEAD_UNITS
    assert doc["normalization"]["center_shift"] == normalization.CENTER_SHIFT


def test_web_build_gallery_and_samples(demo_public, exported_model):
    manifest = json.loads((demo_public / "manifest.json").read_text())
    meta = json.loads((demo_public / "gallery.json").read_text())
    embeddings = np.fromfile(demo_public / "gallery.bin", dtype="<f4")
    assert embeddings.size == meta["count"] * meta["dim"] and meta["dim"] == manifest["model"]["embedding_dim"]
    assert len(meta["labels"]) == meta["count"] and max(meta["labels"]) < len(meta["label_names"])
    assert manifest["model"]["preprocessing"]["max_frames"] == json.loads(
        (exported_model / "model.json").read_text())["normalization"]["max_frames"]
    assert manifest["model"]["inputs"] == {"landmarks": "landmarks", "padding_mask": "padding_mask", "output": "embedding"}
    int8 = manifest["model"]["variants"]["int8"]
    assert (demo_public / int8["file"]).stat().st_size == int8["bytes"] < manifest["model"]["bytes"]
    gallery_signers = set(meta["signer_ids"])
    assert manifest["samples"], "no sample clips bundled"
    for sample in manifest["samples"]:
        raw = np.load(demo_public / sample["file"], allow_pickle=False)
        assert raw.shape == (sample["frames"], layout.RAW_FEATURES) and raw.dtype == np.float32
        assert sample["signer_id"] not in gallery_signers  # samples come from held-out signers
        assert sample["gloss"] in meta["label_names"]


def test_web_build_rejects_a_folder_without_model(web_build, tmp_path):
    with pytest.raises(web_build.UsageError, match="no model.onnx"):
        web_build.build(tmp_path, tmp_path / "out")


def test_web_build_takes_a_gallery_saved_by_evaluate(web_build, exported_model, tmp_path, caplog):
    from evaluation.gallery import Gallery
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((7, 32)).astype(np.float32)
    gallery = Gallery(embeddings, [0, 1, 2, 0, 1, 2, 0], ["hello", "thanks", "yes"], [f"v{i}" for i in range(7)],
                      ["s1"] * 7, "cosine", "abc123")
    gallery.save(tmp_path / "gallery.npz")
    out = tmp_path / "public"
    manifest = web_build.build(exported_model, out, gallery_npz=tmp_path / "gallery.npz", num_samples=2,
                               synthetic_classes=4, synthetic_signers=2, gallery_signers=1)
    meta = json.loads((out / "gallery.json").read_text())
    np.testing.assert_array_equal(np.fromfile(out / "gallery.bin", "<f4").reshape(7, 32), embeddings)
    assert meta["metric"] == "cosine" and meta["label_names"] == ["hello", "thanks", "yes"]
    assert meta["labels"] == [0, 1, 2, 0, 1, 2, 0] and meta["model_digest"] == "abc123"
    assert manifest["samples"] == [] and "no sample clips bundled" in caplog.text


def test_web_build_rejects_a_gallery_of_another_embedding_size(web_build, exported_model, tmp_path):
    from evaluation.gallery import Gallery
    Gallery(np.zeros((2, 8), np.float32), [0, 1], ["a", "b"]).save(tmp_path / "gallery.npz")
    with pytest.raises(web_build.DataError, match="8 dimensions, the model gives 32"):
        web_build.build(exported_model, tmp_path / "out", gallery_npz=tmp_path / "gallery.npz", num_samples=0)


def test_web_build_embeds_a_landmark_folder_like_the_reference(web_build, exported_model, tmp_path):
    """--gallery-data: each clip resampled (max_frames) and normalised as trained, embedded alone."""
    from datasets.loading import load_sequence_set
    from datasets.synthetic import write_synthetic_dataset
    data = tmp_path / "data"
    write_synthetic_dataset(data, num_classes=3, num_signers=2, samples_per_class_per_signer=1, val_signers=1,
                            min_frames=40, max_frames=120)
    out = tmp_path / "public"
    manifest = web_build.build(exported_model, out, gallery_data=data, gallery_split="train", num_samples=0)
    prep = manifest["model"]["preprocessing"]
    seqs = load_sequence_set(data, split="train", cache=False)
    assert any(len(seqs.sequence(i)) > prep["max_frames"] for i in range(len(seqs)))
    session = web_build.open_session(exported_model / "model.onnx")
    expected = web_build.embed(session, [web_build.prepare_points(seqs.sequence(i), prep) for i in range(len(seqs))])
    got = np.fromfile(out / "gallery.bin", "<f4").reshape(expected.shape)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    meta = json.loads((out / "gallery.json").read_text())
    assert meta["video_ids"] == list(seqs.video_ids) and meta["count"] == len(seqs)
    # Resampling really happened: an unresampled long clip embeds differently.
    long = next(i for i in range(len(seqs)) if len(seqs.sequence(i)) > prep["max_frames"])
    unresampled = web_build.embed(session, [web_build.prepare_points(seqs.sequence(long), {**prep, "max_frames": 0})])
    assert np.abs(unresampled[0] - got[long]).max() > 1e-4


def test_web_build_records_the_model_digest(demo_public):
    """The page stamps own signs with manifest.model.digest: model.json's, which the embedded gallery carries too."""
    manifest = json.loads((demo_public / "manifest.json").read_text())
    model = json.loads((demo_public / "model.json").read_text())
    assert manifest["model"]["digest"] == model["model_digest"] != ""
    assert json.loads((demo_public / "gallery.json").read_text())["model_digest"] == model["model_digest"]
