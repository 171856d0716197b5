"""Landmark layouts and clip collections: the formats read and written, sequences, splits, caches.

The lowest layer: it imports no other package of the project. Preparing a clip for the
model (normalisation, resampling, augmentation, torch datasets) lives one layer up, in
:mod:`augmentations`.
"""
