"""Bad SPOTER CSVs and indexes, met by ``train.py`` (training set) and ``evaluate.py`` (gallery).

Each broken file must end the run with one line naming the file, the row (as a line
number of the file, header = 1) and the column where they apply, and what is wrong.
Unusual but valid data (a gloss never seen in training, a gloss with one sample) must
run to the end. ``preprocessing.py create`` refuses a path-traversing index too:
tests/test_preprocessing_create_cli.py::test_path_traversal_in_the_index_is_refused.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.robustness.corpus import (TINY_TRAIN, assert_clean_failure, assert_no_traceback, landmark_folder,
                                     read_rows, run_many, write_rows)

LINE = 4  # the broken row, as a line number of the file (its third data row)


def _edit_cell(column: str, edit):
    def change(header, rows):
        c = header.index(column)
        rows[LINE - 2][c] = edit(rows[LINE - 2][c])
    return change


def _set_value(position: int, text: str):
    def edit(cell: str) -> str:
        values = cell.strip()[1:-1].split(",")
        values[position] = text
        return "[" + ",".join(values) + "]"
    return edit


def _drop_columns(*names):
    def change(header, rows):
        keep = [i for i, name in enumerate(header) if name not in names]
        header[:] = [header[i] for i in keep]
        rows[:] = [[row[i] for i in keep] for row in rows]
    return change


def _empty_row(header, rows):
    for c, name in enumerate(header):
        if name.endswith(("_X", "_Y")):
            rows[LINE - 2][c] = "[]"


def _ragged_row(header, rows):
    c = header.index("leftWrist_Y")
    values = rows[LINE - 2][c].strip()[1:-1].split(",")
    rows[LINE - 2][c] = "[" + ",".join(values[:-2]) + "]"


# name -> (edit of (header, rows), words the last stderr line must contain besides the file name)
CSV_CASES = {
    "missing_columns": (_drop_columns("leftEar_X", "leftEar_Y"), ["missing column(s)", "leftEar_X"]),
    "ragged_lists": (_ragged_row, [f"row {LINE}", "leftWrist_Y", "ragged"]),
    "non_numeric": (_edit_cell("neck_Y", _set_value(1, "abc")), [f"row {LINE}", "neck_Y", "non-numeric"]),
    "blank_value": (_edit_cell("nose_X", _set_value(2, "")), [f"row {LINE}", "nose_X", "non-numeric or blank"]),
    "empty_lists": (_empty_row, [f"row {LINE}", "empty coordinate lists"]),
    "nan": (_edit_cell("rightEye_X", _set_value(0, "nan")), [f"row {LINE}", "rightEye_X", "NaN or infinite"]),
    "inf": (_edit_cell("leftShoulder_Y", _set_value(3, "inf")), [f"row {LINE}", "leftShoulder_Y", "NaN or infinite"]),
    "huge_value": (_edit_cell("rightWrist_X", _set_value(1, "3e20")), [f"row {LINE}", "rightWrist_X",
                                                                      "not an image-relative coordinate"]),
    "not_a_list": (_edit_cell("nose_Y", lambda cell: "0.5"), [f"row {LINE}", "nose_Y", "bracketed list"]),
    "bad_label": (_edit_cell("labels", lambda cell: "seven"), [f"row {LINE}", "labels", "not an integer"]),
    "negative_label": (_edit_cell("labels", lambda cell: "-1"), [f"row {LINE}", "labels", "negative"]),
    "two_names_for_a_label": (_edit_cell("label_name", lambda cell: cell + "_other"),
                              [f"row {LINE}", "label_name", "named both"]),
    "short_row": (lambda header, rows: rows[LINE - 2].pop(), [f"row {LINE}", "fields, header has"]),
}
RAW_CASES = {  # whole files
    "empty_file": (b"", ["empty file"]),
    "header_only": (None, ["no data rows"]),
    "binary": (bytes(range(256)) * 8, ["cannot read"]),
}
INDEX_CASES = {  # landmark folder indexes naming files outside the folder
    "traversal_csv": ("index.csv", "../../outside", ["'../../outside'", "path components are refused"]),
    "absolute_csv": ("index.csv", "/tmp/outside", ["'/tmp/outside'", "path components are refused"]),
    "traversal_json": ("index.json", "../outside", ["'../outside'", "path components are refused"]),
}


@pytest.fixture(scope="module")
def inputs(tiny_synthetic_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-csvs")
    source = tiny_synthetic_dataset / "tiny_train.csv"
    made = {}
    for name, (change, _) in CSV_CASES.items():
        header, rows = read_rows(source)
        change(header, rows)
        made[name] = write_rows(root / f"{name}.csv", header, rows)
    for name, (content, _) in RAW_CASES.items():
        made[name] = root / f"{name}.csv"
        if content is None:
            made[name].write_text(source.read_text().splitlines()[0] + "\n")
        else:
            made[name].write_bytes(content)
    for name, (index_name, video_id, _) in INDEX_CASES.items():
        folder = landmark_folder(tiny_synthetic_dataset, root / name)
        # a readable landmark file where the traversing id points: it must never be loaded
        np.save(root / "outside.npy", np.full((10, 150), 0.5, np.float32))
        if index_name == "index.json":
            (folder / "index.csv").unlink()
            entries = json.loads((tiny_synthetic_dataset / "index.json").read_text())
            entries[0]["instances"].append({"video_id": video_id, "split": "train"})
            (folder / "index.json").write_text(json.dumps(entries))
        else:
            header, rows = read_rows(folder / "index.csv")
            rows.append([video_id, rows[0][1], "signer99", "train"])
            write_rows(folder / "index.csv", header, rows)
        made[name] = folder
    made.update(_unusual_data(tiny_synthetic_dataset, root))
    return made


def _unusual_data(dataset, root):
    """Valid data that evaluation and training must handle: unseen glosses, one-sample glosses."""
    header, rows = read_rows(dataset / "tiny_val.csv")
    c_label, c_name = header.index("labels"), header.index("label_name")
    unseen = [list(row) for row in rows]
    for row in unseen[:3]:
        row[c_label], row[c_name] = "99", "never_seen_in_training"
    header_t, rows_t = read_rows(dataset / "tiny_train.csv")
    first = rows_t[0][header_t.index("label_name")]
    # keep one sample of the first gloss only
    keep = [row for row in rows_t if row[header_t.index("label_name")] != first] + [rows_t[0]]
    singleton = root / "singleton"
    singleton.mkdir()
    return {"unseen_queries": write_rows(root / "unseen_queries.csv", header, unseen),
            "singleton_train": write_rows(singleton / "train.csv", header_t, keep)}


@pytest.fixture(scope="module")
def results(inputs, tiny_checkpoint, tiny_synthetic_dataset, corpus_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-csvs-out")
    commands = {}
    for name in (*CSV_CASES, *RAW_CASES, *INDEX_CASES):
        train_args = ["--train_split", "train"] if name in INDEX_CASES else []
        commands[f"train-{name}"] = ["train.py", "--training_set_path", str(inputs[name]), *train_args,
                                     "--out_dir", str(out / name), *TINY_TRAIN]
        commands[f"evaluate-{name}"] = ["evaluate.py", "--checkpoint", str(tiny_checkpoint), "--gallery",
                                        str(inputs[name]), "--no-baseline", "--quiet"]
    commands["evaluate-unseen"] = ["evaluate.py", "--checkpoint", str(tiny_checkpoint), "--gallery",
                                   str(tiny_synthetic_dataset / "tiny_train.csv"), "--queries",
                                   str(inputs["unseen_queries"]), "--no-baseline", "--quiet",
                                   "--output-json", str(out / "unseen.json")]
    commands["train-unseen"] = ["train.py", "--training_set_path", str(tiny_synthetic_dataset / "tiny_train.csv"),
                                "--validation_set_path", str(inputs["unseen_queries"]), "--out_dir",
                                str(out / "unseen"), *TINY_TRAIN]
    commands["train-singleton"] = ["train.py", "--training_set_path", str(inputs["singleton_train"]),
                                   "--out_dir", str(out / "singleton"), *TINY_TRAIN]
    commands["evaluate-singleton"] = ["evaluate.py", "--checkpoint", str(tiny_checkpoint), "--gallery",
                                      str(inputs["singleton_train"]), "--no-baseline", "--quiet",
                                      "--output-json", str(out / "singleton.json")]
    return run_many(commands, corpus_env), out


@pytest.mark.parametrize("entry", ["train", "evaluate"])
@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_broken_csv_row_or_column_is_named(results, inputs, entry, name):
    assert_clean_failure(results[0][f"{entry}-{name}"], 1, inputs[name].name, *CSV_CASES[name][1])


@pytest.mark.parametrize("entry", ["train", "evaluate"])
@pytest.mark.parametrize("name", sorted(RAW_CASES))
def test_unusable_csv_file_is_named(results, inputs, entry, name):
    assert_clean_failure(results[0][f"{entry}-{name}"], 1, inputs[name].name, *RAW_CASES[name][1])


@pytest.mark.parametrize("entry", ["train", "evaluate"])
@pytest.mark.parametrize("name", sorted(INDEX_CASES))
def test_index_naming_a_file_outside_the_folder_is_refused(results, inputs, entry, name):
    index_name, _, words = INDEX_CASES[name]
    assert_clean_failure(results[0][f"{entry}-{name}"], 1, str(inputs[name] / index_name), *words)


def test_evaluate_reports_queries_whose_gloss_is_not_in_the_gallery(results):
    runs, out = results
    run = runs["evaluate-unseen"]
    assert_no_traceback(run)
    assert run.status == 0, run.describe()
    standard = json.loads((out / "unseen.json").read_text())["results"]["model"]["protocols"]["standard"]
    assert standard["queries"] == standard["answerable_queries"] + 3, standard


def test_train_with_a_validation_gloss_unseen_in_training_runs(results):
    run = results[0]["train-unseen"]
    assert_no_traceback(run)
    assert run.status == 0, run.describe()


def test_train_warns_about_a_class_with_one_sample_and_runs(results):
    run = results[0]["train-singleton"]
    assert_no_traceback(run)
    assert run.status == 0, run.describe()
    assert any("single training sample" in line for line in run.lines), run.describe()


def test_evaluate_with_a_one_sample_gloss_runs(results):
    runs, out = results
    run = runs["evaluate-singleton"]
    assert_no_traceback(run)
    assert run.status == 0, run.describe()
    assert json.loads((out / "singleton.json").read_text())["gallery"]["samples"] > 0
