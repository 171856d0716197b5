"""Mirror averaging: the mirror of a normalised clip is the normalised mirror of the image,
and a mirror-averaged model gives a clip and its mirror the same embedding (eval only)."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from augmentations.normalization import normalize
from augmentations.transforms import Mirror
from datasets import layout
from datasets.errors import UsageError
from datasets.synthetic import generate_signs
from export.onnx_export import export_validated
from models import SpoterConfig, build_model
from models.spoter import mirror_normalized
from training.config import TrainConfig

SMALL = dict(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=64, vector_length=16)


def image_clips_synthetic() -> list[np.ndarray]:
    samples = generate_signs(num_classes=3, num_signers=2, samples_per_class_per_signer=1, seed=5,
                             min_frames=12, max_frames=20)
    return [layout.raw_to_spoter(s.raw) for s in samples]


def image_clips_real(folder) -> list[np.ndarray]:
    files = sorted((folder / "landmarks").glob("*.npy"))[:40:8]
    return [layout.raw_to_spoter(np.load(f)) for f in files]


def assert_mirror_commutes_with_normalisation(clips):
    for points in clips:
        direct = mirror_normalized(torch.from_numpy(normalize(points))).numpy()
        via_image = normalize(Mirror()(points))
        np.testing.assert_allclose(direct, via_image, atol=2e-6, rtol=0)
        # undetected points stay undetected, and the mirror is not the identity
        assert np.array_equal(direct == 0, via_image == 0)
        assert np.abs(direct - normalize(points)).max() > 0.05


def test_mirror_of_normalised_synthetic_clips_is_the_normalised_mirrored_image():
    assert_mirror_commutes_with_normalisation(image_clips_synthetic())


def test_mirror_of_normalised_real_clips_is_the_normalised_mirrored_image(real_dev_dir):
    clips = image_clips_real(real_dev_dir)
    assert any((c[:, layout.HAND_SLICES[0]] == 0).all(axis=(1, 2)).any() for c in clips), "want a missing hand"
    assert_mirror_commutes_with_normalisation(clips)


def model(mirror: bool, seed: int = 0, **config):
    torch.manual_seed(seed)
    return build_model(SpoterConfig(**SMALL, mirror_average=mirror, **config)).eval()


def batch():
    clips = [torch.from_numpy(normalize(c)) for c in image_clips_synthetic()[:3]]
    t = max(len(c) for c in clips)
    x = torch.zeros(len(clips), t, layout.NUM_POINTS, layout.NUM_COORDS)
    mask = torch.ones(len(clips), t, dtype=torch.bool)
    for i, c in enumerate(clips):
        x[i, :len(c)], mask[i, :len(c)] = c, False
    return x, mask


@pytest.mark.parametrize("unit", [True, False])
def test_averaged_embedding_is_mirror_invariant_and_is_the_mean_of_both(unit):
    x, mask = batch()
    averaged = model(True, normalize_embeddings=unit)
    with torch.no_grad():
        e = averaged(x, mask)
        torch.testing.assert_close(averaged(mirror_normalized(x), mask), e, atol=1e-6, rtol=0)
        mean = (averaged.embed(x, mask) + averaged.embed(mirror_normalized(x), mask)) / 2
        expected = mean / mean.norm(dim=-1, keepdim=True) if unit else mean
        torch.testing.assert_close(e, expected, atol=1e-6, rtol=0)
        # the same weights without averaging are not mirror-invariant (the check can fail)
        plain = model(False, normalize_embeddings=unit)
        assert (plain(mirror_normalized(x), mask) - plain(x, mask)).abs().max() > 1e-3
        if unit:
            torch.testing.assert_close(e.norm(dim=-1), torch.ones(len(e)), atol=1e-6, rtol=0)


def test_padded_batch_equals_each_clip_alone():
    x, mask = batch()
    averaged = model(True)
    with torch.no_grad():
        together = averaged(x, mask)
        for i in range(len(x)):
            n = int((~mask[i]).sum())
            torch.testing.assert_close(averaged(x[i:i + 1, :n]), together[i:i + 1], atol=2e-6, rtol=0)


def test_training_mode_embeds_the_clip_as_given():
    x, mask = batch()
    averaged = model(True, dropout=0.0).train()
    torch.testing.assert_close(averaged(x, mask), averaged.embed(x, mask), atol=0, rtol=0)
    averaged.eval()
    with torch.no_grad():
        assert (averaged(x, mask) - averaged.embed(x, mask)).abs().max() > 1e-4


def test_onnx_export_of_a_mirror_averaged_model_is_validated_and_invariant():
    averaged = model(True, normalize_embeddings=True)
    proto, table, streamlined = export_validated(averaged, batches=(1, 3), frames=(1, 17))
    assert table.passed and streamlined
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x, mask = batch()
    run = lambda a: session.run(None, {"landmarks": a.numpy(), "padding_mask": mask.numpy()})[0]  # noqa: E731
    np.testing.assert_allclose(run(x), run(mirror_normalized(x)), atol=1e-5, rtol=0)
    with torch.no_grad():
        np.testing.assert_allclose(run(x), averaged(x, mask).numpy(), atol=1e-5, rtol=0)


def test_mirror_average_needs_an_embedding_model_with_the_centered_normalisation():
    with pytest.raises(ValueError, match="mirror_average needs an embedding model"):
        SpoterConfig(mirror_average=True, classification=True, num_classes=3)
    with pytest.raises(UsageError, match="--mirror_average .* --normalization centered"):
        TrainConfig(mirror_average=True, normalization="spoter").check()
    config = TrainConfig(mirror_average=True)
    config.check()
    assert build_model(config.model_config(num_classes=0)).config.mirror_average
