"""Synthetic sign-language landmark sequences: the default dataset and the test fixture source.

Each class is a *sign recipe* (where the dominant hand goes, along which path, with
which handshapes and palm orientations, one- or two-handed, head movement); each
signer has their own body proportions, framing, speed, amplitude, handedness and
personal offsets; each sample adds frame count, time warp, detector jitter and
dropped detections. The output is the raw MediaPipe layout of
:mod:`datasets.layout`, deterministic by seed.

One module per part of the picture, each depending only on those before it:

* :mod:`~datasets.synthetic.seeds` - the seed streams (one generator per class, signer, sample);
* :mod:`~datasets.synthetic.hands` - the kinematic hand model and the handshape table;
* :mod:`~datasets.synthetic.vocabulary` - the signing space and the class recipes;
* :mod:`~datasets.synthetic.signers` - signer profiles and the variability knobs;
* :mod:`~datasets.synthetic.motion` - time curves and the dominant hand's path;
* :mod:`~datasets.synthetic.body` - arms by inverse kinematics, face, lower body;
* :mod:`~datasets.synthetic.generate` - one sample, step by step, and every sample of a set;
* :mod:`~datasets.synthetic.writer` - the dataset folder on disk and ``python -m datasets.synthetic``.
"""
from datasets.synthetic.generate import STYLE_SIZE, SyntheticSample, generate_sample, generate_signs
from datasets.synthetic.hands import HANDSHAPES, SIGN_HANDSHAPES, hand_points
from datasets.synthetic.seeds import GENERATOR_VERSION
from datasets.synthetic.signers import SignerProfile, Variability, make_signers
from datasets.synthetic.vocabulary import (HEAD_MOVEMENTS, LOCATIONS, MOVEMENTS, TWO_HANDED, SignRecipe,
                                           make_recipes)
from datasets.synthetic.writer import main, write_synthetic_dataset

__all__ = [
    "GENERATOR_VERSION", "HANDSHAPES", "HEAD_MOVEMENTS", "LOCATIONS", "MOVEMENTS", "SIGN_HANDSHAPES", "STYLE_SIZE",
    "TWO_HANDED", "SignRecipe", "SignerProfile", "SyntheticSample", "Variability", "generate_sample",
    "generate_signs", "hand_points", "main", "make_recipes", "make_signers", "write_synthetic_dataset",
]
