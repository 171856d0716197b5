"""End-to-end behaviour of the training loop on a tiny model and a tiny hand-made dataset."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv
from models.checkpoint import load_checkpoint
from training.config import TrainConfig
from training.engine import train

REPO = Path(__file__).resolve().parents[2]
TINY = dict(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32, vector_length=8, batch_size=8,
            samples_per_class=2, epoch_iters=3, eval_every=1, augmentations_prob=0.5, tracker="local")


def _clips(rng, classes=4, per_class=6, signers=3):
    seqs, labels, signer_ids = [], [], []
    for c in range(classes):
        direction = np.array([np.cos(c), np.sin(c)], np.float32) * 0.01
        for i in range(per_class):
            t = int(rng.integers(6, 12))
            base = rng.uniform(0.3, 0.7, size=(1, 54, 2)).astype(np.float32)
            seqs.append(base + np.arange(t, dtype=np.float32)[:, None, None] * direction + rng.normal(0, 0.002, (t, 54, 2)).astype(np.float32))
            labels.append(c)
            signer_ids.append(f"s{i % signers}")
    return seqs, labels, signer_ids


@pytest.fixture(scope="module")
def tiny_csvs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for name in ("train", "val"):
        seqs, labels, signers = _clips(rng)
        data = SequenceSet.from_sequences(seqs, labels, ["a", "b", "c", "d"], video_ids=[f"{name}{i}" for i in range(len(seqs))],
                                          signer_ids=signers)
        write_spoter_csv(data, folder / f"{name}.csv")
    return folder


def _config(folder, out, **overrides):
    values = dict(TINY, training_set_path=str(folder / "train.csv"), validation_set_path=str(folder / "val.csv"),
                  out_dir=str(out), experiment_name="t", epochs=3, seed=5)
    values.update(overrides)
    return TrainConfig(**values)


def test_checkpoint_contents_and_metrics(tiny_csvs, tmp_path):
    metrics = train(_config(tiny_csvs, tmp_path, epochs=2))
    for key in ("train_loss", "active_fraction", "lr", "train_silhouette", "val_silhouette", "val_top1", "val_top5",
                "val_cross_signer_top1"):
        assert key in metrics and np.isfinite(metrics[key]), key
    ck = torch.load(tmp_path / "t" / "last.pth", weights_only=True)
    assert {"state_dict", "config", "model_config", "label_names", "metrics"} <= set(ck)
    assert ck["label_names"] == ["a", "b", "c", "d"] and ck["config"]["epochs"] == 2
    assert (tmp_path / "t" / "best.pth").exists() and (tmp_path / "t" / "curves.png").exists()
    lines = (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    assert (tmp_path / "t" / "val_tsne_epoch2.png").exists() and (tmp_path / "t" / "val_tsne_epoch2.html").exists()


@pytest.mark.parametrize("mining", ["in_batch", "batch_hard"])
def test_resume_continues_exactly(tiny_csvs, tmp_path, mining):
    filtering = mining == "in_batch"  # easy-triplet filtering belongs to batch-all mining only
    straight = _config(tiny_csvs, tmp_path / "a", hard_triplet_mining=mining, filter_easy_triplets=filtering)
    train(straight)
    train(_config(tiny_csvs, tmp_path / "b", epochs=2, hard_triplet_mining=mining, filter_easy_triplets=filtering))
    train(_config(tiny_csvs, tmp_path / "b", epochs=3, resume=True, hard_triplet_mining=mining,
                  filter_easy_triplets=filtering))
    a, b = load_checkpoint(tmp_path / "a" / "t" / "last.pth"), load_checkpoint(tmp_path / "b" / "t" / "last.pth")
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_hard_mining_epochs_run(tiny_csvs, tmp_path):
    metrics = train(_config(tiny_csvs, tmp_path, epochs=2, start_mining_hard=1, hard_mining_pre_batch_multipler=2,
                            hard_mining_pre_batch_mining_count=2))
    assert np.isfinite(metrics["train_loss"])


def test_classification_model_trains(tiny_csvs, tmp_path):
    metrics = train(_config(tiny_csvs, tmp_path, epochs=1, classification_model=True))
    assert np.isfinite(metrics["train_loss"])


def test_train_cli_usage_errors(tiny_csvs, tmp_path):
    base = [sys.executable, "train.py", "--training_set_path", str(tiny_csvs / "train.csv"), "--out_dir", str(tmp_path)]
    for extra, needle in ((["--epochs", "0"], "--epochs"), (["--batch_size", "1000"], "larger than the training set"),
                          (["--batch_size", "-3"], "--batch_size")):
        result = subprocess.run(base + extra, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert needle in result.stderr and "Traceback" not in result.stderr
    missing = subprocess.run([sys.executable, "train.py", "--training_set_path", str(tmp_path / "nope.csv")],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_distributed_two_gloo_processes(tiny_csvs, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ["--training_set_path", str(tiny_csvs / "train.csv"), "--validation_set_path", str(tiny_csvs / "val.csv"),
            "--out_dir", str(tmp_path), "--experiment_name", "ddp", "--epochs", "2", "--num_encoder_layers", "1",
            "--num_decoder_layers", "1", "--dim_feedforward", "32", "--vector_length", "8", "--batch_size", "8",
            "--samples_per_class", "2", "--epoch_iters", "4"]
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                "train.py", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:  # never leave workers behind, whatever happened
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr[-2000:]
    ck = load_checkpoint(tmp_path / "ddp" / "last.pth")
    assert ck["epoch"] == 1 and not any(k.startswith("module.") for k in ck["state_dict"])
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2  # rank 0 logs once per epoch


def test_clearml_tracker_offline(tiny_csvs, tmp_path, monkeypatch):
    conf = tmp_path / "clearml.conf"
    conf.write_text("sdk { development { report_use_subprocess: false } }\n")
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(conf))
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml-cache"))
    metrics = train(_config(tiny_csvs, tmp_path / "out", epochs=1, tracker="clearml"))
    assert np.isfinite(metrics["train_loss"])
    # Offline sessions are kept as a folder (and zip) that `clearml-task import-offline-session` can upload later.
    recorded = list((tmp_path / "clearml-cache").rglob("*.jsonl")) + list((tmp_path / "clearml-cache").rglob("*.zip"))
    assert recorded, list((tmp_path / "clearml-cache").rglob("*"))[:20]


def test_epochs_report_their_padding_and_length_batching_pads_to_multiples_of_16(tiny_csvs, tmp_path):
    plain = train(_config(tiny_csvs, tmp_path / "plain", sampler="random", epochs=1))
    grouped = train(_config(tiny_csvs, tmp_path / "grouped", sampler="random", epochs=1, length_batching=True))
    for metrics in (plain, grouped):
        assert 0 < metrics["padding_share"] < 1
        assert metrics["padding_share"] == pytest.approx(1 - metrics["real_frames"] / metrics["padded_frames"])
    assert grouped["padded_frames"] % 16 == 0 and grouped["padded_frames_squared"] % 256 == 0
    assert plain["padded_frames"] < grouped["padded_frames"]  # 6-11-frame clips: rounding up to 16 adds padding


def test_length_batching_runs_with_pk_batches_and_keeps_every_clip_padded_to_16(tiny_csvs, tmp_path):
    plain = train(_config(tiny_csvs, tmp_path / "pk", sampler="pk", epochs=1))
    grouped = train(_config(tiny_csvs, tmp_path / "pk_grouped", sampler="pk", epochs=1, length_batching=True))
    assert grouped["real_frames"] == plain["real_frames"]  # the same clips (the same P×K groups), regrouped
    assert grouped["padded_frames"] % 16 == 0 and np.isfinite(grouped["train_loss"])
