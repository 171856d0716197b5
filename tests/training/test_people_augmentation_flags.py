"""--time_warp_prob and --hand_dropout_prob reach the training clips (and only the training clips)."""
import numpy as np
import pytest
import torch

from datasets import layout
from datasets.errors import UsageError
from datasets.sequences import SequenceSet
from training.config import TrainConfig
from training.data import TrainingData, build_eval_dataset, build_train_dataset


def one_clip_set() -> SequenceSet:
    frames = np.random.default_rng(0).uniform(0.2, 0.8, (30, layout.NUM_POINTS, layout.NUM_COORDS)).astype(np.float32)
    return SequenceSet(frames=frames, offsets=[0, 30], labels=[0], label_names=["hello"], video_ids=["v0"],
                       signer_ids=["s0"])


def first_clip(config: TrainConfig) -> torch.Tensor:
    sequences = one_clip_set()
    return build_train_dataset(TrainingData(sequences, None, sequences.label_names), config)[0][0]


QUIET = dict(augmentations_prob=0.0, gaussian_std=0.0)  # every other augmentation off


def test_each_flag_changes_the_training_clip_and_off_leaves_it():
    plain = first_clip(TrainConfig(**QUIET))
    sequences = one_clip_set()
    torch.testing.assert_close(plain, build_eval_dataset(sequences, TrainConfig(**QUIET))[0][0])
    warped = first_clip(TrainConfig(**QUIET, time_warp_prob=1.0))
    assert warped.shape == plain.shape and not torch.equal(warped, plain)
    dropped = first_clip(TrainConfig(**QUIET, hand_dropout_prob=1.0))
    hidden = lambda clip: int((clip.reshape(30, -1, 2) == 0).all(-1).sum())  # noqa: E731
    assert hidden(dropped) > hidden(plain)
    # evaluation clips are never augmented, whatever the flags
    evaluated = build_eval_dataset(sequences, TrainConfig(**QUIET, time_warp_prob=1.0, hand_dropout_prob=1.0))[0][0]
    torch.testing.assert_close(evaluated, plain)


@pytest.mark.parametrize("flag", ["time_warp_prob", "hand_dropout_prob"])
def test_a_probability_outside_0_1_is_a_usage_error(flag):
    with pytest.raises(UsageError, match=f"--{flag}"):
        TrainConfig(**{flag: 1.5}).check()
