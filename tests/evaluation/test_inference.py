"""Embedding through a checkpoint: its own preprocessing, the untrained twin, detection checks."""
import numpy as np
import pytest
import torch

from augmentations.torch_data import SignDataset
from datasets import layout
from datasets.errors import DataError
from datasets.loading import load_sequence_set
from evaluation.embedding import embed_dataset
from evaluation.inference import NoDetectionError, check_detections, load_embedder, untrained_twin
from models.checkpoint import load_checkpoint, save_checkpoint
from models.spoter import build_model


@pytest.fixture(scope="module")
def val_set(tiny_synthetic_dataset):
    return load_sequence_set(tiny_synthetic_dataset / "tiny_val.csv", cache=False)


def test_embeddings_use_the_checkpoint_preprocessing(tiny_checkpoint, val_set):
    embedder = load_embedder(tiny_checkpoint)
    checkpoint = load_checkpoint(tiny_checkpoint)
    model = build_model(checkpoint["model_config"])
    model.load_state_dict(checkpoint["state_dict"])
    norm = checkpoint["normalization"]
    direct = embed_dataset(model, SignDataset(val_set, None, norm["body"], norm["hands"], norm["max_frames"],
                                              norm["resample_frames"] or None))
    np.testing.assert_allclose(embedder.embed(val_set), direct, rtol=1e-5, atol=1e-6)
    assert embedder.embed(val_set).shape == (len(val_set), embedder.embedding_dim) == (len(val_set), 16)


def test_stored_normalization_wins_over_defaults(tiny_checkpoint, val_set, tmp_path):
    checkpoint = load_checkpoint(tiny_checkpoint)
    checkpoint["normalization"] = {**checkpoint["normalization"], "body": "spoter", "max_frames": 10}
    save_checkpoint(tmp_path / "spoter.pth", checkpoint)
    changed = load_embedder(tmp_path / "spoter.pth")
    dataset = changed.dataset(val_set)
    assert dataset.normalization == "spoter" and dataset.max_frames == 10
    assert len(dataset[0][0]) <= 10
    assert not np.allclose(changed.embed(val_set), load_embedder(tiny_checkpoint).embed(val_set))


def test_untrained_twin_is_the_seeded_initialisation(tiny_checkpoint, val_set):
    trained = load_embedder(tiny_checkpoint)
    state = torch.get_rng_state()
    twin = untrained_twin(trained)
    assert torch.equal(torch.get_rng_state(), state)            # the caller's RNG is left alone
    torch.manual_seed(trained.seed)
    reference = build_model(trained.model.config)
    for key, value in reference.state_dict().items():
        assert torch.equal(value, twin.model.state_dict()[key]), key
    assert twin.digest == untrained_twin(trained).digest != trained.digest
    assert twin.name == "untrained" and load_embedder(tiny_checkpoint, untrained=True).digest == twin.digest
    assert not np.allclose(twin.embed(val_set), trained.embed(val_set))


def test_embed_raw_equals_embedding_the_loaded_set(tiny_checkpoint, tiny_synthetic_dataset):
    embedder = load_embedder(tiny_checkpoint)
    folder = load_sequence_set(tiny_synthetic_dataset, split="val", cache=False)
    raws = [np.load(tiny_synthetic_dataset / "landmarks" / f"{v}.npy") for v in folder.video_ids[:5]]
    np.testing.assert_allclose(embedder.embed_raw(raws), embedder.embed(folder.subset(np.arange(5))), atol=1e-6)


def test_bad_checkpoints_give_one_line_errors(tmp_path, tiny_checkpoint):
    with pytest.raises(DataError, match="checkpoint not found"):
        load_embedder(tmp_path / "missing.pth")
    checkpoint = load_checkpoint(tiny_checkpoint)
    checkpoint["normalization"] = {**checkpoint["normalization"], "body": "sideways"}
    save_checkpoint(tmp_path / "odd.pth", checkpoint)
    with pytest.raises(DataError, match=r"odd\.pth: checkpoint normalization 'sideways' is not one of centered"):
        load_embedder(tmp_path / "odd.pth")
    checkpoint["normalization"] = {**checkpoint["normalization"], "body": "centered", "max_frames": "many"}
    save_checkpoint(tmp_path / "odd.pth", checkpoint)
    with pytest.raises(DataError, match="clip preparation settings are not usable"):
        load_embedder(tmp_path / "odd.pth")


def test_embedder_prepares_clips_as_training_evaluated_them(tiny_checkpoint, val_set):
    """The checkpoint's preparation settings are those training's evaluation pass used, key for key."""
    from training.config import TrainConfig
    from training.data import build_eval_dataset
    checkpoint = load_checkpoint(tiny_checkpoint)
    config = TrainConfig.from_dict(dict(checkpoint["config"]))
    assert load_embedder(tiny_checkpoint).dataset(val_set).settings == build_eval_dataset(val_set, config).settings
    assert load_embedder(tiny_checkpoint).seed == config.seed


def test_detection_check():
    raw = np.zeros((4, layout.RAW_FEATURES), np.float32)
    with pytest.raises(NoDetectionError, match="clip: no person detected in any of its 4 frames"):
        check_detections(raw, "clip")
    raw[:, :layout.NUM_POSE * 2] = 0.5                     # a body, no hands
    with pytest.raises(NoDetectionError, match="no hands detected"):
        check_detections(raw, "clip")
    raw[2, layout.RAW_RIGHT_HAND_OFFSET * 2:] = 0.4        # one hand in one frame is enough
    check_detections(raw, "clip")


def test_enrol_new_glosses_from_a_few_clips(tiny_checkpoint, tiny_synthetic_dataset, tmp_path):
    from datasets.synthetic import write_synthetic_dataset
    from evaluation.gallery import Gallery, build_gallery, enrol
    embedder = load_embedder(tiny_checkpoint)
    gallery = build_gallery(embedder, load_sequence_set(tiny_synthetic_dataset / "tiny_train.csv", cache=False))
    write_synthetic_dataset(tmp_path / "new", num_classes=3, num_signers=2, samples_per_class_per_signer=1,
                            val_signers=0, seed=77, min_frames=20, max_frames=30, name="new")
    new = load_sequence_set(tmp_path / "new", cache=False)
    bigger = enrol(gallery, embedder, new)
    assert bigger.label_names[:len(gallery.label_names)] == gallery.label_names
    assert set(bigger.label_names) - set(gallery.label_names) == set(new.label_names)
    matches = bigger.query(embedder.embed(new), k=5)
    assert [matches.top(i)[0][0] for i in range(len(new))] == [new.label_names[l] for l in new.labels]
    saved = Gallery.load(bigger.save(tmp_path / "g.npz"))
    assert saved.label_names == bigger.label_names and len(saved) == len(gallery) + len(new)
    with pytest.raises(DataError, match="built with another model"):
        enrol(gallery, untrained_twin(embedder), new)
