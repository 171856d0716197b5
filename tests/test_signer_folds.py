"""The signer-fold protocol (bench/signer_folds.py) on tiny data: folds, galleries, report."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.sequences import SequenceSet

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load_module():
    spec = importlib.util.spec_from_file_location("signer_folds", REPO_ROOT / "bench" / "signer_folds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("signer_folds", module)
    spec.loader.exec_module(module)
    return module


signer_folds = _load_module()

TINY_RECIPE = ["--num_encoder_layers", "1", "--num_decoder_layers", "1", "--dim_feedforward", "32",
               "--vector_length", "8", "--epochs", "1", "--epoch_iters", "2", "--batch_size", "8",
               "--samples_per_class", "2"]


def _signers_and_labels():
    # s0..s4; gloss 2 is signed only by s1 and s3, gloss 3 only by s4.
    rows = [("s0", 0), ("s0", 1), ("s1", 0), ("s1", 2), ("s2", 0), ("s2", 1), ("s3", 2), ("s3", 1), ("s4", 3)]
    rows = [r for r in rows for _ in range(2)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def test_folds_are_signer_disjoint_deterministic_and_cover_everyone():
    signers, labels = _signers_and_labels()
    folds = signer_folds.signer_folds(signers, labels, 3)
    flat = [s for fold in folds for s in fold]
    assert sorted(flat) == sorted(set(signers.tolist()))
    assert len(flat) == len(set(flat))
    assert all(folds)
    assert folds == signer_folds.signer_folds(signers[::-1], labels[::-1], 3)


def test_the_only_two_signers_of_a_gloss_share_a_fold():
    signers, labels = _signers_and_labels()
    for k in (2, 3, 4):
        folds = signer_folds.signer_folds(signers, labels, k)
        assert any({"s1", "s3"} <= set(fold) for fold in folds)


def test_too_many_folds_is_a_usage_error():
    from datasets.errors import UsageError
    signers, labels = _signers_and_labels()
    with pytest.raises(UsageError, match="--folds"):
        signer_folds.signer_folds(signers, labels, 6)


def _toy_set(signers, labels) -> SequenceSet:
    clips = [np.full((3, 54, 2), 0.5, np.float32) for _ in labels]
    return SequenceSet.from_sequences(clips, labels, [f"g{i}" for i in range(labels.max() + 1)],
                                      video_ids=[f"v{i}" for i in range(len(labels))], signer_ids=signers)


def test_gallery_never_holds_the_query_signer():
    # Query 0 (s0, gloss 0) sits ON its own signer's gloss-1 sample; the nearest OTHER
    # person's sample is gloss 0. Only with the signer excluded is top-1 right.
    signers = np.array(["s0", "s0", "s1", "s1"])
    labels = np.array([0, 1, 0, 1])
    emb = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], np.float32)
    hits = signer_folds.fold_hits(emb, _toy_set(signers, labels), np.array([0]), np.array([0, 1]))
    assert hits["top1"].tolist() == [True]
    # Same geometry with the gloss-1 sample moved to another signer: it now wins.
    signers = np.array(["s0", "s2", "s1", "s1"])
    hits = signer_folds.fold_hits(emb, _toy_set(signers, labels), np.array([0]), np.array([0, 1]))
    assert hits["top1"].tolist() == [False]


def test_answerable_seen_and_unseen_groups():
    signers = np.array(["a", "a", "b", "b", "c"])
    labels = np.array([0, 1, 0, 1, 2])
    emb = np.eye(5, dtype=np.float32)
    queries = np.array([0, 1, 4])
    hits = signer_folds.fold_hits(emb, _toy_set(signers, labels), queries, train_labels=np.array([0]))
    assert hits["answerable"].tolist() == [True, True, False]   # gloss 2: nobody else signs it
    assert hits["seen"].tolist() == [True, False, False]
    summary = signer_folds.summarize_hits(hits)
    assert (summary["all_n"], summary["multi_signer_n"], summary["seen_n"], summary["unseen_n"]) == (3, 2, 1, 1)
    assert summary["all_top5"] <= 2 / 3  # the unanswerable query can never be right


def test_protocol_reports_trained_and_untrained(tiny_synthetic_dataset, tmp_path):
    from datasets.loading import load_sequence_set
    sequences = load_sequence_set(tiny_synthetic_dataset, cache=False)
    report = signer_folds.run(sequences, TINY_RECIPE, folds=2, seeds=(0,), work_dir=str(tmp_path))
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN
    assert report["signers"] == len(set(sequences.signer_ids.tolist()))
    folds = [set(f) for f in report["folds"]]
    assert not folds[0] & folds[1]
    for which in ("trained", "untrained"):
        assert report[which]["all_n"] == len(sequences)            # every sample is a query once
        for key in ("all_top1", "all_top5", "multi_signer_top1", "multi_signer_top5"):
            value = report[which][key]["mean"]
            assert value is not None and 0.0 <= value <= 1.0
        assert report[which]["all_top1"]["mean"] <= report[which]["all_top5"]["mean"]


def test_untrained_model_is_the_training_start(tiny_synthetic_dataset):
    from training.cli import config_from_args
    config, _ = config_from_args(TINY_RECIPE + ["--seed", "5"])
    a = signer_folds.untrained_model(config, 8)
    b = signer_folds.untrained_model(config, 8)
    c = signer_folds.untrained_model(config_from_args(TINY_RECIPE + ["--seed", "6"])[0], 8)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))


def test_init_checkpoint_starts_training_from_those_weights(tiny_checkpoint, tiny_synthetic_dataset, tmp_path):
    from datasets.errors import UsageError
    from models.spoter import build_model
    from training.checkpoint import load_checkpoint
    from training.config import TrainConfig
    from training.engine import load_initial_weights
    stored = load_checkpoint(tiny_checkpoint)
    model = build_model(stored["model_config"])
    load_initial_weights(model, str(tiny_checkpoint))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, stored["state_dict"][name]), name
    other = build_model({**stored["model_config"], "num_encoder_layers": 2})
    with pytest.raises(UsageError, match="init_checkpoint"):
        load_initial_weights(other, str(tiny_checkpoint))
    assert TrainConfig().init_checkpoint == ""


def test_handedness_study_option_runs_on_clips():
    # Regression: the study's --canonical_handedness variant crashed on every (T, 54, 2) clip.
    from datasets import layout
    from datasets.preprocess import canonicalize_handedness, left_hand_dominant
    clip = np.zeros((4, layout.NUM_POINTS, 2), np.float32)
    clip[:, layout.BODY_SLICE] = 0.5
    clip[:, layout.LEFT_HAND_SLICE] = 0.3
    assert left_hand_dominant(clip)
    flipped = canonicalize_handedness(clip)
    assert (flipped[:, layout.RIGHT_HAND_SLICE] != 0).all() and (flipped[:, layout.LEFT_HAND_SLICE] == 0).all()
    assert not left_hand_dominant(flipped)
