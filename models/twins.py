"""The deliberate twins: code that computes what another part computes, kept for speed or for
another runtime, each with the test that holds it equal to its reference.

Everything else has one home. A twin exists only when the reference cannot serve:
training memory (the lean layers), an exportable graph (the streamlined forward), or the
browser (JavaScript). Change a reference and its twin together; the listed test fails when
they drift. ``tests/test_twins.py`` checks that every file and test named here exists.
"""
from __future__ import annotations

TWINS = (
    {"twin": "models/lean_layers.py", "reference": "torch.nn.TransformerEncoderLayer",
     "why": "trains with dropout in about half the memory and time (recomputes attention in backward)",
     "test": "tests/models/test_lean_layers.py::"
             "test_training_forward_and_backward_equal_the_stock_layer_with_the_same_dropout_masks"},
    {"twin": "export/graph.py", "reference": "models/spoter.py",
     "why": "one plain graph for ONNX/TFLite: fused projections, no nn.MultiheadAttention branches",
     "test": "tests/export/test_graph.py::test_streamlined_forward_equals_the_model"},
    {"twin": "web/src/landmarks.js", "reference": "augmentations/normalization.py",
     "why": "the browser normalises webcam landmarks itself",
     "test": "tests/web/test_web_browser.py::test_browser_normalization_matches_python_on_real_dev"},
    {"twin": "web/src/landmarks.js", "reference": "augmentations/preprocess.py",
     "why": "the browser resamples clips to the model's frame count itself",
     "test": "tests/web/test_web_browser.py::test_browser_resampling_indices_match_python"},
    {"twin": "web/src/recognizer.js", "reference": "evaluation/ranking.py",
     "why": "the browser ranks glosses by nearest neighbours itself",
     "test": "tests/web/test_web_browser.py::test_browser_top5_matches_python_onnxruntime"},
)
