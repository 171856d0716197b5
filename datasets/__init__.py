"""Landmark layouts, dataset I/O, normalisation and training datasets."""
