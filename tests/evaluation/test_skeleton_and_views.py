"""Skeleton drawing follows the layout; notebook tables and figures come from the report objects."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from datasets import layout
from datasets.errors import UsageError
from evaluation.report import EmbeddedSet, evaluate_embeddings
from evaluation.skeleton import BONE_GROUPS, BONE_NAMES, BONES, animate, bone_segments
from evaluation.views import confusion_figure, per_gloss_figure, per_gloss_frame, project, results_frame


def test_bones_cover_every_point_and_stay_within_a_group():
    assert set(BONES.ravel().tolist()) == set(range(layout.NUM_POINTS))   # nothing left undrawn
    for (a, b), group in zip(BONES, BONE_GROUPS):
        def group_of(i):
            return 0 if i < layout.NUM_BODY else (1 if i < layout.RIGHT_HAND_SLICE.start else 2)
        assert group_of(a) == group_of(b) == group
    assert ("nose", "neck") in BONE_NAMES and ("wrist_left", "thumbCMC_left") in BONE_NAMES


def test_bone_segments_hide_undetected_points():
    points = np.random.default_rng(0).uniform(0.2, 0.8, (3, layout.NUM_POINTS, 2)).astype(np.float32)
    points[1, layout.RIGHT_HAND_SLICE] = 0                     # right hand lost in frame 1
    segments = bone_segments(points)
    assert segments.shape == (3, len(BONES), 2, 2)
    right = BONE_GROUPS == 2
    assert np.isnan(segments[1, right]).all() and np.isfinite(segments[1, ~right]).all()
    np.testing.assert_array_equal(segments[0, :, 0], points[0, BONES[:, 0]])


def test_animation_plays_clips_of_different_lengths_together():
    rng = np.random.default_rng(1)
    clips = [rng.uniform(0.2, 0.8, (n, layout.NUM_POINTS, 2)).astype(np.float32) for n in (5, 12)]
    animation = animate(clips, ["a", "b"], max_frames=8)
    html = animation.to_jshtml()
    assert html.count("data:image/png") == 8


def test_views_tables_and_figures():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 6)
    emb = rng.normal(size=(4, 5))[labels] + rng.normal(0, 0.3, (24, 5))
    data = EmbeddedSet(emb.astype(np.float32), labels, ["a", "b", "c", "d"], np.asarray([f"v{i}" for i in range(24)]),
                       np.asarray([f"s{i % 3}" for i in range(24)]))
    results = [evaluate_embeddings(data, None, shots=[1], draws=2, model=m) for m in ("model", "untrained")]
    table = results_frame(results)
    assert list(table.columns) == ["model", "untrained", "model ±", "untrained ±"]   # ± only for few-shot draws
    assert ("cross_signer", "kNN top-5") in [(p, m) for p, _, m in table.index]
    standard = results[0].protocols["standard"].metrics
    assert table.loc[("standard", "24/24", "kNN top-1"), "model"] == standard["knn_top1"]
    frame = per_gloss_frame(results[0])
    assert list(frame["gloss"]) == sorted(frame["gloss"], key=lambda g: (frame.set_index("gloss").loc[g, "top1"], g))
    assert per_gloss_figure(results[0]).axes and confusion_figure(results[0], "cross_signer").axes
    assert project(emb, "pca").shape == (24, 2)
    with pytest.raises(UsageError, match="unknown projection"):
        project(emb, "mds")
