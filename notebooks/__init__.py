"""Support for the evaluation notebooks (data and checkpoint fallbacks, video look-up); see notebooks/support.py."""
