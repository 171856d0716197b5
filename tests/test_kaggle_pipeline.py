"""A folder in the Kaggle ISLR (asl-signs) layout, made from real-dev clips, goes through the
whole pipeline: ``preprocessing.py create --split signer`` → ``train.py`` → ``evaluate.py``,
with participants as signers (signer-disjoint split, cross-signer evaluation)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import preprocessing
from entrypoint import run_cli
from tests import pose_fixtures as fixtures

REPO = Path(__file__).resolve().parents[1]
GLOSSES = 6


@pytest.fixture(scope="module")
def kaggle_root(real_dev_dir, tmp_path_factory) -> Path:
    """``train.csv`` + ``train_landmark_files/<participant>/<sequence>.parquet``, numeric ids as Kaggle's."""
    rows = list(csv.DictReader(open(real_dev_dir / "index.csv")))
    signers_per_gloss = defaultdict(set)
    for row in rows:
        signers_per_gloss[row["gloss"]].add(row["signer_id"])
    glosses = sorted(g for g in signers_per_gloss if len(signers_per_gloss[g]) >= 3)[:GLOSSES]
    participants = {s: str(20000 + i) for i, s in enumerate(sorted({r["signer_id"] for r in rows}))}
    root = tmp_path_factory.mktemp("asl-signs")
    lines = ["path,participant_id,sequence_id,sign"]
    for k, row in enumerate(r for r in rows if r["gloss"] in glosses):
        participant, sequence = participants[row["signer_id"]], str(1000000 + k)
        relative = f"train_landmark_files/{participant}/{sequence}.parquet"
        fixtures.write_kaggle_parquet(root / relative, np.load(real_dev_dir / "landmarks" / f"{row['video_id']}.npy"))
        lines.append(f"{relative},{participant},{sequence},{row['gloss']}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def test_kaggle_layout_create_train_evaluate(kaggle_root, tmp_path, capsys):
    data = tmp_path / "csv"
    status = run_cli(preprocessing.main, ["create", "--landmarks-dataset", str(kaggle_root), "--index",
                                          str(kaggle_root / "train.csv"), "--dataset-folder", str(data),
                                          "--name", "asl", "--split", "signer", "--test-size", "0.3"])
    assert status == 0, capsys.readouterr().err
    report = json.loads((data / "create_report.json").read_text())
    assert not report["skipped"] and report["num_classes"] == GLOSSES
    signers = {name: {r["signer_id"] for r in csv.DictReader(open(data / f"asl_{name}.csv"))}
               for name in ("train", "val")}
    assert signers["train"] and signers["val"] and not signers["train"] & signers["val"]
    assert all(20000 <= int(s) < 20100 for s in signers["train"] | signers["val"])  # participant ids kept

    result = subprocess.run(
        [sys.executable, "train.py", "--device", "cpu", "--epochs", "2", "--training_set_path",
         str(data / "asl_train.csv"), "--validation_set_path", str(data / "asl_val.csv"), "--out_dir",
         str(tmp_path / "runs"), "--experiment_name", "asl", "--num_encoder_layers", "1", "--num_decoder_layers",
         "1", "--dim_feedforward", "64", "--batch_size", "8", "--samples_per_class", "2", "--epoch_iters", "3",
         "--tracker", "none"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = tmp_path / "runs" / "asl" / "best.pth"
    assert checkpoint.is_file()

    # evaluate straight on the Kaggle folder (its train.csv is the index) and on the val CSV
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--checkpoint", str(checkpoint), "--gallery", str(kaggle_root),
         "--output-json", str(out), "--quiet", "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(out.read_text())
    assert document["gallery"]["samples"] == len((kaggle_root / "train.csv").read_text().splitlines()) - 1
    assert document["gallery"]["signers"] == len(signers["train"] | signers["val"])
    for model in ("model", "untrained"):  # participants are signers: the cross-signer protocol runs
        cross = document["results"][model]["protocols"]["cross_signer"]
        assert 0.0 <= cross["knn_top1"] <= cross["knn_top5"] <= 1.0
