"""Command-line tests for ``preprocessing.py create`` and ``import``: exit statuses and one-line errors."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import preprocessing
from datasets import layout
from datasets.spoter_csv import read_spoter_csv

REPO_ROOT = Path(__file__).resolve().parents[1]
GLOSSES = ("bye", "hello", "no", "yes")


@pytest.fixture
def folder(tmp_path) -> Path:
    """12 landmark files (4 glosses x 3 signers) in ``landmarks/`` and an ``index.csv``, signer c = test."""
    landmarks = tmp_path / "landmarks"
    landmarks.mkdir()
    rows = ["video_id,gloss,signer_id,split"]
    rng = np.random.default_rng(0)
    for g, gloss in enumerate(GLOSSES):
        for signer in "abc":
            video_id = f"{gloss}_{signer}"
            np.save(landmarks / f"{video_id}.npy", rng.random((4 + g, layout.RAW_FEATURES), dtype=np.float32))
            rows.append(f"{video_id},{gloss},{signer},{'test' if signer == 'c' else 'train'}")
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def create(folder: Path, out: Path, *extra: str) -> int:
    return preprocessing.main(["create", "--landmarks-dataset", str(folder / "landmarks"),
                               "--index", str(folder / "index.csv"), "--dataset-folder", str(out), *extra])


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_create_writes_the_dataset(folder, tmp_path, capsys):
    assert create(folder, tmp_path / "out", "--name", "mine") == 0
    train, val = (read_spoter_csv(tmp_path / "out" / f"mine_{part}.csv") for part in ("train", "val"))
    assert (len(train), len(val)) == (8, 4)
    assert set(val.signer_ids.tolist()) == {"c"}
    assert json.loads((tmp_path / "out" / "id_to_label.json").read_text()) == dict(
        (str(i), g) for i, g in enumerate(GLOSSES))


def test_create_writes_train_val_and_test_for_a_wlasl_style_index(folder, tmp_path, caplog):
    """An index with train, val and test splits (WLASL's) -> three files, val and test kept apart."""
    lines = (folder / "index.csv").read_text().splitlines()
    lines = [line.replace(",train", ",val") if line.split(",")[2] == "b" else line for line in lines]
    (folder / "index.csv").write_text("\n".join(lines) + "\n")
    caplog.set_level(logging.INFO)
    assert create(folder, tmp_path / "out", "--name", "wlasl") == 0
    files = {part: read_spoter_csv(tmp_path / "out" / f"wlasl_{part}.csv") for part in ("train", "val", "test")}
    assert {part: set(d.signer_ids.tolist()) for part, d in files.items()} == {"train": {"a"}, "val": {"b"},
                                                                             "test": {"c"}}
    report = json.loads((tmp_path / "out" / "create_report.json").read_text())
    assert (report["train_samples"], report["val_samples"], report["test_samples"]) == (4, 4, 4)
    assert "4 test" in caplog.text and "wlasl_test.csv" in caplog.text


def test_new_signer_split_and_num_classes(folder, tmp_path):
    assert create(folder, tmp_path / "out", "--create-new-split", "--split", "signer", "--test-size", "0.3",
                  "--seed", "4", "--num-classes", "3") == 0
    train, val = (read_spoter_csv(tmp_path / "out" / f"dataset_{part}.csv") for part in ("train", "val"))
    assert set(train.signer_ids.tolist()).isdisjoint(val.signer_ids.tolist())
    assert len(train) + len(val) == 9
    # yes has the longest files but all glosses have 3 samples: the tie goes by name
    report = json.loads((tmp_path / "out" / "create_report.json").read_text())
    assert report["label_names"] == ["bye", "hello", "no"] and report["dropped_glosses"] == ["yes"]


def test_skipped_files_are_reported_and_exit_zero(folder, tmp_path, caplog):
    (folder / "landmarks" / "hello_a.npy").unlink()
    assert create(folder, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "create_report.json").read_text())
    assert [item["video_id"] for item in report["skipped"]] == ["hello_a"]
    assert "skipped 1 of 12" in caplog.text


def test_missing_landmarks_folder(folder, tmp_path, capsys):
    code = preprocessing.main(["create", "--landmarks-dataset", str(folder / "no-such-folder"), "--index",
                               str(folder / "index.csv"), "--dataset-folder", str(tmp_path / "out")])
    assert code == 2
    assert "no-such-folder does not exist" in one_error_line(capsys)


def test_missing_index(folder, tmp_path, capsys):
    code = preprocessing.main(["create", "--landmarks-dataset", str(folder / "landmarks"), "--index",
                               str(folder / "nothing.json"), "--dataset-folder", str(tmp_path / "out")])
    assert code == 2
    line = one_error_line(capsys)
    assert line.startswith("preprocessing.py create: error:") and "nothing.json" in line


def test_no_index_found_in_the_folder(folder, tmp_path, capsys):
    code = preprocessing.main(["create", "--landmarks-dataset", str(folder / "landmarks"),
                               "--dataset-folder", str(tmp_path / "out")])
    assert code == 2
    assert "no index.json or index.csv" in one_error_line(capsys)


@pytest.mark.parametrize("extra", [
    ["--create-new-split", "--test-size", "1.5"], ["--create-new-split", "--test-size", "0"],
    ["--num-classes", "0"], ["--create-new-split", "--split", "random"],
])
def test_bad_values_are_usage_errors(folder, tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as stop:
        create(folder, tmp_path / "out", *extra)
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_split_method_alone_draws_a_new_split(folder, tmp_path):
    """``--split signer`` means drawing that split (an index without splits, e.g. Kaggle's, needs no more)."""
    assert create(folder, tmp_path / "alone", "--split", "signer", "--name", "x") == 0
    assert create(folder, tmp_path / "explicit", "--create-new-split", "--split", "signer", "--name", "x") == 0
    for name in ("x_train.csv", "x_val.csv"):
        assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "explicit" / name).read_bytes()
    train = {row.split(",")[0] for row in (tmp_path / "alone" / "x_train.csv").read_text().splitlines()[1:]}
    assert train  # a real split, not an empty file


def test_path_traversal_in_the_index_is_refused(folder, tmp_path, capsys):
    with open(folder / "index.csv", "a") as handle:
        handle.write("../../etc/passwd,hello,a,train\n")
    assert create(folder, tmp_path / "out") == 2
    line = one_error_line(capsys)
    assert "'../../etc/passwd' is not a plain file name" in line and "row 14" in line


def test_import_then_create_gives_back_the_same_files(folder, tmp_path):
    assert create(folder, tmp_path / "first", "--name", "x") == 0
    csvs = [str(tmp_path / "first" / "x_train.csv"), str(tmp_path / "first" / "x_val.csv")]
    assert preprocessing.main(["import", "--spoter-csv", *csvs, "--output-landmarks", str(tmp_path / "imported")]) == 0
    assert preprocessing.main(["create", "--landmarks-dataset", str(tmp_path / "imported"),
                               "--dataset-folder", str(tmp_path / "second"), "--name", "x"]) == 0
    for name in ("x_train.csv", "x_val.csv", "id_to_label.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_import_of_a_missing_csv(tmp_path, capsys):
    code = preprocessing.main(["import", "--spoter-csv", str(tmp_path / "none.csv"),
                               "--output-landmarks", str(tmp_path / "o")])
    assert code == 2 and "none.csv" in one_error_line(capsys)


def test_create_runs_as_a_script(folder, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "preprocessing.py"), "create", "--landmarks-dataset", str(folder),
         "--index", str(folder / "index.csv"), "--dataset-folder", str(tmp_path / "out"), "--create-new-split",
         "--split", "signer"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stderr and (tmp_path / "out" / "dataset_val.csv").is_file()
