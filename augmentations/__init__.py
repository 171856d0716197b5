"""Seeded, vectorised landmark augmentations (see :mod:`augmentations.transforms`)."""
from augmentations.transforms import (  # noqa: F401
    ArmJointRotate, Compose, GaussianNoise, Mirror, OneOf, Perspective, RandomApply, Rotate, Squeeze,
    spoter_augmentations,
)
