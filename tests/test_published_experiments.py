"""The README's WLASL100 / LSA64 zero-shot command path, on a small built-in stand-in.

The real CSVs are not available offline. Two synthetic "sign languages" (different
generator seeds, so different glosses) written as SPOTER CSVs stand in: train on one
with train.py, then evaluate.py with the other's train split as gallery and its val
split as queries, exactly as README's commands do for WLASL100 -> LSA64.
"""
from __future__ import annotations

import json

import pytest

import evaluate
import train
from entrypoint import run_cli

# The published flags (README), shrunk to a tiny network and one short epoch.
PUBLISHED_FLAGS = ["--optimizer", "SGD", "--lr", "0.001", "--vector_length", "32", "--hard_triplet_mining", "in_batch",
                   "--filter_easy_triplets", "--triplet_loss_margin", "1", "--dropout", "0.2",
                   "--augmentations_prob", "0.75", "--sampler", "random", "--positional_encoding", "single",
                   "--normalization", "spoter"]
TINY = ["--num_encoder_layers", "1", "--num_decoder_layers", "1", "--dim_feedforward", "32", "--epochs", "1",
        "--epoch_iters", "3", "--batch_size", "8", "--tracker", "none"]


@pytest.fixture(scope="module")
def two_languages(tmp_path_factory):
    from datasets.synthetic import write_synthetic_dataset
    root = tmp_path_factory.mktemp("languages")
    for name, seed in (("wlasl_like", 11), ("lsa_like", 12)):
        write_synthetic_dataset(root / name, num_classes=6, num_signers=3, samples_per_class_per_signer=2,
                                val_signers=1, seed=seed, min_frames=20, max_frames=30, name=name)
    return root


def test_train_on_one_language_and_evaluate_zero_shot_on_another(two_languages, tmp_path, capsys):
    source, target = two_languages / "wlasl_like", two_languages / "lsa_like"
    status = run_cli(train.main, ["--training_set_path", str(source / "wlasl_like_train.csv"),
                                  "--validation_set_path", str(source / "wlasl_like_val.csv"),
                                  "--experiment_name", "wlasl_like", "--out_dir", str(tmp_path), *PUBLISHED_FLAGS, *TINY])
    assert status == 0, capsys.readouterr().err
    checkpoint = tmp_path / "wlasl_like" / "best.pth"
    assert checkpoint.is_file()

    report = tmp_path / "zero_shot.json"
    status = run_cli(evaluate.main, ["--checkpoint", str(checkpoint), "--gallery", str(target / "lsa_like_train.csv"),
                                     "--queries", str(target / "lsa_like_val.csv"), "--output-json", str(report),
                                     "--quiet", "--no-cache"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "kNN top-1" in out
    document = json.loads(report.read_text())
    standard = document["results"]["model"]["protocols"]["standard"]
    assert 0.0 <= standard["knn_top1"] <= standard["knn_top5"] <= 1.0
    assert standard["queries"] == 6 * 2          # the target language's val signer: 6 glosses x 2 clips
    # Zero-shot: none of the evaluated glosses was in the training vocabulary.
    from models.checkpoint import load_checkpoint
    trained_on = set(load_checkpoint(checkpoint)["label_names"])
    evaluated = {row["gloss"] for row in standard["per_gloss"]}
    assert evaluated and not evaluated & trained_on
