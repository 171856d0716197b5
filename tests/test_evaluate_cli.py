"""``evaluate.py`` end to end on a tiny trained checkpoint: table, JSON, gallery npz, errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import evaluate
from entrypoint import run_cli
from evaluation.gallery import Gallery
from models.checkpoint import load_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    status = run_cli(evaluate.main, [*argv, "--quiet", "--no-cache"])
    out, err = capsys.readouterr()
    return status, out, err


def test_same_set_report_json_and_gallery(tiny_checkpoint, tiny_synthetic_dataset, tmp_path, capsys):
    report, gallery = tmp_path / "report.json", tmp_path / "out" / "gallery.npz"
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(tiny_synthetic_dataset),
                            "--shots", "1", "--draws", "2", "--per-gloss", "--output-json", str(report),
                            "--save-gallery", str(gallery)], capsys)
    assert status == 0, err
    header = next(line for line in out.splitlines() if line.startswith("protocol"))
    assert header.split()[-2:] == ["model", "untrained"]        # the baseline is shown beside the model
    for text in ("kNN top-1", "kNN top-5", "centroid top-1", "MAP@R", "cross_signer", "few_shot_1", "silhouette",
                 "each query leaves its own video out", "most confused"):
        assert text in out, text
    document = json.loads(report.read_text())
    assert document["queries"] == {"same_as_gallery": True}
    assert document["gallery"]["samples"] == 64 and document["gallery"]["signers"] == 4
    assert set(document["results"]) == {"model", "untrained"}
    protocols = document["results"]["model"]["protocols"]
    assert {"standard", "cross_signer", "few_shot_1", "few_shot_1_cross_signer"} <= set(protocols)
    for name in ("standard", "cross_signer"):
        for key in ("knn_top1", "knn_top5", "centroid_top1", "centroid_top5", "map_at_r"):
            assert 0.0 <= protocols[name][key] <= 1.0
        assert protocols[name]["knn_top1"] <= protocols[name]["knn_top5"]
    names = {row["gloss"] for row in protocols["standard"]["per_gloss"]}
    index_glosses = {line.split(",")[1] for line in (tiny_synthetic_dataset / "index.csv").read_text().splitlines()[1:]}
    assert names == index_glosses                                  # gloss names of the evaluated data
    with np.load(gallery, allow_pickle=False) as raw:
        assert raw["embeddings"].dtype == np.float32 and raw["embeddings"].shape == (64, 16)
        assert raw["labels"].dtype.kind == "i" and set(raw["label_names"].tolist()) == index_glosses
        assert raw["video_ids"].shape == (64,) and raw["signer_ids"].shape == (64,)
    assert len(Gallery.load(gallery)) == 64


def test_separate_gallery_and_queries(tiny_checkpoint, tiny_synthetic_dataset, tmp_path, capsys):
    report = tmp_path / "r.json"
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(tiny_synthetic_dataset),
                            "--gallery-split", "train", "--queries", str(tiny_synthetic_dataset / "tiny_val.csv"),
                            "--no-baseline", "--output-json", str(report)], capsys)
    assert status == 0, err
    document = json.loads(report.read_text())
    assert set(document["results"]) == {"model"}
    assert document["gallery"]["samples"] == 48 and document["queries"]["samples"] == 16
    assert document["shared_video_ids"] == 0
    assert "silhouette (gallery)" in out and "untrained" not in out.split("protocol")[1]


def test_untrained_only(tiny_checkpoint, tiny_synthetic_dataset, tmp_path, capsys):
    report, gallery = tmp_path / "r.json", tmp_path / "g.npz"
    status, _, err = run(["--checkpoint", str(tiny_checkpoint),
                          "--gallery", str(tiny_synthetic_dataset / "tiny_val.csv"),
                          "--untrained", "--output-json", str(report), "--save-gallery", str(gallery)], capsys)
    assert status == 0, err
    assert set(json.loads(report.read_text())["results"]) == {"untrained"}
    from evaluation.inference import load_embedder
    assert Gallery.load(gallery).model_digest == load_embedder(tiny_checkpoint, untrained=True).digest


def test_zero_shot_gloss_names_come_from_the_evaluated_data(tiny_checkpoint, tmp_path, capsys):
    from datasets.synthetic import write_synthetic_dataset
    other = tmp_path / "other"
    write_synthetic_dataset(other, num_classes=5, num_signers=3, samples_per_class_per_signer=2, val_signers=0,
                            seed=99, min_frames=20, max_frames=30, name="other")
    report = tmp_path / "r.json"
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(other), "--shots", "1", "2",
                            "--output-json", str(report)], capsys)
    assert status == 0, err
    document = json.loads(report.read_text())
    trained_on = set(load_checkpoint(tiny_checkpoint)["label_names"])
    glosses = {row["gloss"] for row in document["results"]["model"]["protocols"]["standard"]["per_gloss"]}
    assert len(glosses) == 5 and not glosses & trained_on
    assert document["vocabulary"] == {"glosses": 5, "in_training_vocabulary": 0, "zero_shot": True}
    assert "(zero-shot)" in out
    few = document["results"]["model"]["protocols"]["few_shot_2"]
    assert few["shots"] == 2 and few["draws"] == 5 and few["queries"] == 30 - 10


def test_missing_required_flag_is_a_usage_error(tiny_synthetic_dataset, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["--gallery", str(tiny_synthetic_dataset)], capsys)
    assert exit_info.value.code == 2 and "--checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("argv, status, message", [
    (["--checkpoint", "{ck}", "--gallery", "{data}", "--shots", "0"], 2, "--shots values must be >= 1"),
    (["--checkpoint", "{ck}", "--gallery", "{data}", "--queries-split", "val"], 2, "need --queries"),
    (["--checkpoint", "{tmp}/none.pth", "--gallery", "{data}"], 1, "checkpoint not found"),
    (["--checkpoint", "{ck}", "--gallery", "{tmp}/absent.csv"], 1, "absent.csv: gallery not found"),
    (["--checkpoint", "{ck}", "--gallery", "{data}", "--gallery-split", "nope"], 1, "no samples in split 'nope'"),
])
def test_errors_are_one_line(argv, status, message, tiny_checkpoint, tiny_synthetic_dataset, tmp_path, capsys):
    values = {"ck": str(tiny_checkpoint), "data": str(tiny_synthetic_dataset), "tmp": str(tmp_path)}
    code, _, err = run([a.format(**values) for a in argv], capsys)
    assert code == status
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_command_line_entry_point(tiny_checkpoint, tiny_synthetic_dataset, tmp_path):
    env = {**os.environ, "SPOTER_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "evaluate.py"), "--checkpoint", str(tiny_checkpoint),
                             "--gallery", str(tiny_synthetic_dataset / "tiny_val.csv"), "--quiet"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "kNN top-1" in result.stdout and "untrained" in result.stdout
    bad = subprocess.run([sys.executable, str(REPO_ROOT / "evaluate.py"), "--checkpoint", str(tmp_path / "x.pth"),
                          "--gallery", str(tiny_synthetic_dataset)], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=300, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ")


def test_index_report_gives_recall_and_accuracy_against_exact(tiny_checkpoint, tiny_synthetic_dataset, tmp_path,
                                                              capsys):
    pytest.importorskip("faiss")
    report, gallery = tmp_path / "report.json", tmp_path / "gallery.npz"
    status, out, err = run(["--checkpoint", str(tiny_checkpoint), "--gallery", str(tiny_synthetic_dataset),
                            "--index", "hnsw", "--no-baseline", "--output-json", str(report),
                            "--save-gallery", str(gallery)], capsys)
    assert status == 0, err
    index = json.loads(report.read_text())["index"]
    assert index["index"] == "hnsw" and index["gallery"] == 64 and index["queries"] == 64
    assert index["recall_at_1"] == 1.0 and index["recall_at_5"] == 1.0          # 64 clips: HNSW is exact
    assert index["hnsw_knn_top1"] == index["exact_knn_top1"]
    assert "hnsw index over 64 clips" in out and "recall@1 1.0000" in out
    assert (tmp_path / "gallery.hnsw.npz").is_file()                            # saved beside the gallery
