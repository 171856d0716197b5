"""Shared fixtures: where the repository and the read-only shared data live."""

import os
from pathlib import Path

import pytest

# With TensorFlow installed (conversion_requirements.txt), `import mediapipe` imports it
# too; keep its C++ start-up logging out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]

try:
    from hypothesis import settings
except ImportError:  # runtime-only venv: hypothesis tests are not collectable anyway
    pass
else:
    # Hypothesis' per-example deadline is a timing assertion; on a busy 2-core CI machine
    # it fails at random, so it is off.
    settings.register_profile("project", deadline=None)
    settings.load_profile("project")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Absolute path of the repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir(repo_root: Path) -> Path:
    """`<repo>/../shared` (read-only reference data); skips the test when absent."""
    path = (repo_root / ".." / "shared").resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found: {path}")
    return path


@pytest.fixture(scope="session")
def real_dev_dir(shared_dir: Path) -> Path:
    """Real landmark set `shared/data/real-dev` (landmarks/*.npy + index.csv); skips when absent."""
    path = shared_dir / "data" / "real-dev"
    if not (path / "index.csv").is_file() or not (path / "landmarks").is_dir():
        pytest.skip(f"real-dev data set not found: {path}")
    return path


@pytest.fixture(scope="session")
def tiny_synthetic_dataset(tmp_path_factory) -> Path:
    """A small synthetic landmark folder (8 glosses x 4 signers x 2 clips, signer03 = val split).

    Holds ``landmarks/``, ``index.csv``/``index.json`` and ``tiny_train.csv``/``tiny_val.csv``.
    """
    from datasets.synthetic import write_synthetic_dataset
    folder = tmp_path_factory.mktemp("tiny_synthetic")
    write_synthetic_dataset(folder, num_classes=8, num_signers=4, samples_per_class_per_signer=2, val_signers=1,
                            seed=3, min_frames=20, max_frames=40, name="tiny")
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_synthetic_dataset: Path) -> Path:
    """``best.pth`` of a one-layer model trained for two batches on ``tiny_synthetic_dataset``."""
    from training.config import TrainConfig
    from training.engine import train
    out = tmp_path_factory.mktemp("tiny_checkpoint")
    config = TrainConfig(
        experiment_name="tiny", out_dir=str(out), tracker="none", seed=7,
        training_set_path=str(tiny_synthetic_dataset / "tiny_train.csv"),
        validation_set_path=str(tiny_synthetic_dataset / "tiny_val.csv"),
        num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64, vector_length=16,
        epochs=1, epoch_iters=2, batch_size=8, samples_per_class=2)
    train(config)
    return out / "tiny" / "best.pth"


@pytest.fixture(autouse=True, scope="session")
def _isolated_dataset_cache(tmp_path_factory):
    """Tests never read or fill the user's dataset cache."""
    import os
    previous = os.environ.get("SPOTER_CACHE_DIR")
    os.environ["SPOTER_CACHE_DIR"] = str(tmp_path_factory.mktemp("dataset-cache"))
    yield
    if previous is None:
        os.environ.pop("SPOTER_CACHE_DIR", None)
    else:
        os.environ["SPOTER_CACHE_DIR"] = previous
