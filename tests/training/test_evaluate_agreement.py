"""The accuracy a training run logs is the accuracy ``evaluate.py`` prints for its checkpoint.

Both go through evaluation.ranking with the model's own distance; the data make the
eligibility rule matter: a validation-only gloss has no answer in the training gallery,
and one gloss is signed in training by a single person, so that person's validation
clips of it have no cross-signer answer.
"""
import json

import numpy as np
import pytest

import evaluate
from datasets.sequences import SequenceSet
from datasets.spoter_csv import write_spoter_csv
from entrypoint import run_cli
from training.config import TrainConfig
from training.engine import train

TINY = dict(num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32, vector_length=8, batch_size=8,
            samples_per_class=2, epoch_iters=3, epochs=2, eval_every=0, tracker="local", seed=3)
SIGNERS = ("s0", "s1", "s2")


def _split(rng, name: str, glosses: dict[str, tuple[str, ...]], per_signer: int = 2) -> SequenceSet:
    """Clips of each gloss moving in its own direction, by the given signers."""
    names = sorted(glosses)
    seqs, labels, signers = [], [], []
    for label, gloss in enumerate(names):
        direction = np.array([np.cos(3 * label), np.sin(3 * label)], np.float32) * 0.01
        for signer in glosses[gloss]:
            for _ in range(per_signer):
                t = int(rng.integers(6, 12))
                base = rng.uniform(0.3, 0.7, size=(1, 54, 2)).astype(np.float32)
                steps = np.arange(t, dtype=np.float32)[:, None, None] * direction
                seqs.append(base + steps + rng.normal(0, 0.002, (t, 54, 2)).astype(np.float32))
                labels.append(label)
                signers.append(signer)
    return SequenceSet.from_sequences(seqs, labels, names, video_ids=[f"{name}{i}" for i in range(len(seqs))],
                                      signer_ids=signers)


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agreement")
    rng = np.random.default_rng(0)
    train_glosses = {"a": SIGNERS, "b": SIGNERS, "c": SIGNERS, "d": ("s0",)}
    val_glosses = {"a": SIGNERS, "b": SIGNERS, "c": SIGNERS, "d": ("s0", "s1"), "e": ("s1",)}
    write_spoter_csv(_split(rng, "train", train_glosses), folder / "train.csv")
    write_spoter_csv(_split(rng, "val", val_glosses), folder / "val.csv")
    return folder


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_logged_validation_accuracy_is_what_evaluate_prints(csvs, tmp_path, capsys, distance):
    config = TrainConfig(**TINY, distance=distance, training_set_path=str(csvs / "train.csv"),
                         validation_set_path=str(csvs / "val.csv"), out_dir=str(tmp_path), experiment_name="t")
    train(config)
    logged = json.loads((tmp_path / "t" / "metrics.jsonl").read_text().splitlines()[-1])
    report_path = tmp_path / "report.json"
    status = run_cli(evaluate.main, ["--checkpoint", str(tmp_path / "t" / "last.pth"), "--gallery",
                                     str(csvs / "train.csv"), "--queries", str(csvs / "val.csv"), "--no-baseline",
                                     "--output-json", str(report_path), "--quiet", "--no-cache"])
    assert status == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["metric"] == distance
    printed = report["results"]["model"]
    standard, cross = printed["protocols"]["standard"], printed["protocols"]["cross_signer"]
    # The data leave some queries unanswerable in both protocols: the figures over answerable
    # queries differ from the ones over every query, so counting misses there would show.
    assert standard["answerable_queries"] < standard["queries"]
    assert cross["answerable_queries"] < standard["answerable_queries"]
    assert standard["knn_top1"] > 0 and cross["knn_top1"] > 0
    for logged_key, figure in (("val_top1", standard["knn_top1"]), ("val_top5", standard["knn_top5"]),
                               ("val_cross_signer_top1", cross["knn_top1"]),
                               ("val_cross_signer_top5", cross["knn_top5"]),
                               ("val_silhouette", printed["silhouette"]["queries"]),
                               ("train_silhouette", printed["silhouette"]["gallery"])):
        assert logged[logged_key] == pytest.approx(figure, abs=1e-6), logged_key
