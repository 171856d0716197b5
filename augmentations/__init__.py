"""Everything that prepares a clip for the model, used alike by training, evaluation, export and the web build.

* :mod:`augmentations.normalization` - body/hand normalisation of point sequences;
* :mod:`augmentations.preprocess` - frame selection, resampling, handedness, ``prepare``;
* :mod:`augmentations.transforms` - seeded, vectorised random augmentations;
* :mod:`augmentations.torch_data` - prepared clips as a torch Dataset, padding collate, P×K sampler.

It sits above :mod:`datasets` (layouts and sequences) and below :mod:`models`.
"""
from augmentations.transforms import (  # noqa: F401
    ArmJointRotate, Compose, GaussianNoise, HandDropout, Mirror, OneOf, Perspective, RandomApply, Rotate, Squeeze,
    TimeWarp,
    spoter_augmentations,
)
