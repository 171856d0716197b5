"""Impossible or broken command lines: every entry point exits 2 for a usage error and 1 for a
file it cannot use, with one line naming the flag or file and what is wrong.

Unwritable output folders are made with a regular *file* as a parent folder: the tests run
as root, and root writes into a ``chmod 000`` folder anyway.
"""
from __future__ import annotations

import json

import pytest

from tests.robustness.corpus import TINY_TRAIN, assert_clean_failure, run_entry, run_many


def _cases(p: dict) -> dict:
    """name -> (argv, exit status, words of the last stderr line); ``p`` holds the paths.

    A table, one entry per bad argument (~90 lines): long because the cases are many, not
    because it does several things.
    """
    train = ["train.py", "--training_set_path", p["train_csv"], "--out_dir", p["out"], *TINY_TRAIN]
    evaluate = ["evaluate.py", "--checkpoint", p["checkpoint"], "--gallery", p["train_csv"], "--quiet", "--no-baseline"]
    predict = ["predict.py", "--checkpoint", p["checkpoint"], "--gallery", p["gallery"]]
    convert = ["convert.py", "-c", p["checkpoint"], "--output-folder", p["out"] + "/convert"]
    extract = ["preprocessing.py", "extract", "--videos-folder", p["videos"], "--output-landmarks", p["out"] + "/lm",
               "--workers", "0"]
    create = ["preprocessing.py", "create", "--landmarks-dataset", p["dataset"], "--dataset-folder", p["out"] + "/csv"]
    return {
        # train.py
        "train-epochs-zero": ([*train, "--epochs", "0"], 2, ["--epochs", "at least 1"]),
        "train-epochs-negative": ([*train, "--epochs", "-3"], 2, ["--epochs", "(got -3)"]),
        "train-epochs-not-a-number": ([*train, "--epochs", "ten"], 2, ["--epochs", "invalid int value"]),
        "train-batch-zero": ([*train, "--batch_size", "0"], 2, ["--batch_size"]),
        "train-batch-negative": ([*train, "--batch_size", "-4"], 2, ["--batch_size", "(got -4)"]),
        "train-batch-larger-than-data": ([*train, "--batch_size", "1000"], 2,
                                         ["--batch_size 1000", "larger than the training set (48 samples)"]),
        "train-pk-impossible": ([*train, "--batch_size", "40", "--samples_per_class", "2"], 2,
                                ["P=20", "only 8 classes"]),
        "train-k-one": ([*train, "--samples_per_class", "1"], 2, ["--samples_per_class", "at least 2"]),
        "train-lr-nan": ([*train, "--lr", "nan"], 2, ["--lr", "positive"]),
        "train-lr-negative": ([*train, "--lr", "-0.1"], 2, ["--lr", "positive"]),
        "train-epoch-iters-zero": ([*train, "--epoch_iters", "0"], 2, ["--epoch_iters"]),
        "train-hard-mining-multiplier-zero": ([*train, "--start_mining_hard", "0",
                                               "--hard_mining_pre_batch_multipler", "0"], 2,
                                              ["--hard_mining_pre_batch_multipler"]),
        "train-resample-negative": ([*train, "--resample_frames", "-1"], 2, ["--resample_frames"]),
        "train-heads-do-not-divide": ([*train, "--hidden_dim", "100"], 2, ["--hidden_dim 100", "--num_heads 9"]),
        "train-device-unknown": ([*train, "--device", "gpu7"], 2, ["--device", "gpu7"]),
        "train-experiment-outside": ([*train, "--experiment_name", "../../escape"], 2, ["--experiment_name"]),
        "train-out-dir-under-a-file": ([*train, "--out_dir", p["file"] + "/sub"], 1,
                                       ["--out_dir", p["file"], "is a file"]),
        "train-missing-training-set": (["train.py", "--training_set_path", p["missing"], "--out_dir", p["out"],
                                        *TINY_TRAIN], 1, [p["missing"], "not found"]),
        "train-missing-validation-set": ([*train, "--validation_set_path", p["missing"]], 1,
                                         [p["missing"], "not found"]),
        "train-missing-init-checkpoint": ([*train, "--init_checkpoint", p["missing"]], 1, [p["missing"], "not found"]),
        "train-missing-config": ([*train, "--config", p["missing"]], 2, ["--config", p["missing"], "not found"]),
        "train-config-bad-json": ([*train, "--config", p["bad_json"]], 2, [p["bad_json"], "invalid JSON", "line 1"]),
        "train-config-wrong-type": (["train.py", "--config", p["wrong_type"]], 2, [p["wrong_type"], "epochs", "int"]),
        "train-config-unknown-key": (["train.py", "--config", p["unknown_key"]], 2, [p["unknown_key"], "learning_rte"]),
        "train-config-not-an-object": (["train.py", "--config", p["list_json"]], 2, [p["list_json"], "JSON object"]),
        "train-split-absent": (["train.py", "--training_set_path", p["dataset"], "--train_split", "nosuch",
                                "--out_dir", p["out"], *TINY_TRAIN], 1, [p["dataset"], "'nosuch'"]),
        "train-dataset-is-a-text-file": (["train.py", "--training_set_path", p["file"], "--out_dir", p["out"],
                                          *TINY_TRAIN], 1, [p["file"], "expected a SPOTER .csv file"]),
        # evaluate.py
        "evaluate-batch-zero": ([*evaluate, "--batch-size", "0"], 2, ["--batch-size"]),
        "evaluate-shots-zero": ([*evaluate, "--shots", "0"], 2, ["--shots"]),
        "evaluate-draws-zero": ([*evaluate, "--draws", "0"], 2, ["--draws"]),
        "evaluate-device-unknown": ([*evaluate, "--device", "gpu7"], 2, ["--device", "gpu7"]),
        "evaluate-missing-gallery": (["evaluate.py", "--checkpoint", p["checkpoint"], "--gallery", p["missing"]], 1,
                                     [p["missing"], "not found"]),
        "evaluate-missing-checkpoint": (["evaluate.py", "--checkpoint", p["missing"], "--gallery", p["train_csv"]], 1,
                                        [p["missing"], "not found"]),
        "evaluate-missing-queries": ([*evaluate, "--queries", p["missing"]], 1, [p["missing"], "not found"]),
        "evaluate-split-absent": ([*evaluate[:4], p["dataset"], "--gallery-split", "nosuch"], 1,
                                  [p["dataset"], "nosuch"]),
        "evaluate-json-under-a-file": ([*evaluate, "--output-json", p["file"] + "/report.json"], 1,
                                       [p["file"], "is a file"]),
        "evaluate-gallery-under-a-file": ([*evaluate, "--save-gallery", p["file"] + "/g.npz"], 1,
                                          [p["file"], "is a file"]),
        # predict.py
        "predict-top-k-zero": ([*predict, "--top-k", "0", p["clip"]], 2, ["--top-k"]),
        "predict-missing-input": ([*predict, p["missing"]], 1, [p["missing"], "not found"]),
        "predict-missing-gallery": (["predict.py", "--checkpoint", p["checkpoint"], "--gallery", p["missing"],
                                     p["clip"]], 1, [p["missing"], "not found"]),
        "predict-wrong-kind-of-file": ([*predict, p["file"]], 1, [p["file"], "expected a landmark file (.npy"]),
        "predict-empty-folder": ([*predict, p["empty_folder"]], 2, [p["empty_folder"], "holds no landmark (.npy"]),
        # convert.py
        "convert-missing-checkpoint": (["convert.py", "-c", p["missing"], "--output-folder", p["out"]], 1,
                                       [p["missing"], "not found"]),
        "convert-output-under-a-file": (["convert.py", "-c", p["checkpoint"], "--output-folder",
                                         p["file"] + "/sub"], 1, [p["file"]]),
        "convert-opset-too-old": ([*convert, "--opset", "5"], 2, ["opset"]),
        "convert-frames-zero": ([*convert, "--tflite", "--frames", "0"], 2, ["--frames"]),
        # preprocessing.py
        "extract-missing-folder": (["preprocessing.py", "extract", "--videos-folder", p["missing"],
                                    "--output-landmarks", p["out"]], 2, [p["missing"], "does not exist"]),
        "extract-folder-is-a-file": (["preprocessing.py", "extract", "--videos-folder", p["file"],
                                      "--output-landmarks", p["out"]], 2, [p["file"], "not a folder"]),
        "extract-output-under-a-file": (["preprocessing.py", "extract", "--videos-folder", p["videos"],
                                         "--output-landmarks", p["file"] + "/lm"], 2,
                                        ["--output-landmarks", p["file"], "is a file"]),
        "extract-workers-negative": ([*extract, "--workers", "-1"], 2, ["--workers"]),
        "extract-shard-out-of-range": ([*extract, "--num-shards", "2", "--shard-index", "5"], 2, ["--shard-index"]),
        "create-missing-folder": (["preprocessing.py", "create", "--landmarks-dataset", p["missing"],
                                   "--dataset-folder", p["out"]], 2, [p["missing"], "does not exist"]),
        "create-missing-index": ([*create, "--index", p["missing"]], 2, [p["missing"], "does not exist"]),
    }


@pytest.fixture(scope="module")
def paths(tiny_checkpoint, tiny_synthetic_dataset, corpus_gallery, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bad-arguments")
    (root / "a_file.txt").write_text("not a folder\n")
    (root / "bad.json").write_text("{epochs: 3}")
    (root / "wrong_type.json").write_text(json.dumps({"epochs": "ten"}))
    (root / "unknown_key.json").write_text(json.dumps({"learning_rte": 0.1}))
    (root / "list.json").write_text(json.dumps([["epochs", 3]]))
    (root / "empty_folder").mkdir()
    (root / "videos").mkdir()
    (root / "videos" / "clip.mp4").write_bytes(b"\x00" * 64)
    return {"train_csv": str(tiny_synthetic_dataset / "tiny_train.csv"), "dataset": str(tiny_synthetic_dataset),
            "checkpoint": str(tiny_checkpoint), "gallery": str(corpus_gallery), "out": str(root / "out"),
            "file": str(root / "a_file.txt"), "missing": str(root / "no_such_file.csv"),
            "bad_json": str(root / "bad.json"), "wrong_type": str(root / "wrong_type.json"),
            "unknown_key": str(root / "unknown_key.json"), "list_json": str(root / "list.json"),
            "empty_folder": str(root / "empty_folder"), "videos": str(root / "videos"),
            "clip": str(sorted((tiny_synthetic_dataset / "landmarks").glob("*.npy"))[0])}


CASE_NAMES = sorted(_cases({key: "x" for key in ("train_csv", "dataset", "checkpoint", "gallery", "out", "file",
                                                  "missing", "bad_json", "wrong_type", "unknown_key", "list_json",
                                                  "empty_folder", "videos", "clip")}))


@pytest.fixture(scope="module")
def results(paths, corpus_env):
    cases = _cases(paths)
    return cases, run_many({name: argv for name, (argv, _, _) in cases.items()}, corpus_env)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_argument_ends_in_one_clear_line(results, name):
    cases, runs = results
    _, status, words = cases[name]
    assert_clean_failure(runs[name], status, *words)


# web/serve.py: a case that wrongly starts serving is stopped by the short timeout (and fails).
WEB_CASES = {
    "port-out-of-range": (["--port", "70000"], ["--port", "70000"]),
    "port-not-a-number": (["--port", "http"], ["--port", "not a port number"]),
    "host-unknown": (["--host", "no-such-host.invalid", "--port", "0"], ["no-such-host.invalid"]),
    "public-folder-missing": (["--public", "/nonexistent/public", "--port", "0"], ["--public", "/nonexistent/public"]),
}


@pytest.mark.parametrize("name", sorted(WEB_CASES))
def test_web_server_bad_argument_ends_in_one_clear_line(corpus_env, name):
    argv, words = WEB_CASES[name]
    assert_clean_failure(run_entry(["web/serve.py", *argv], corpus_env, timeout=60), 2, *words)
