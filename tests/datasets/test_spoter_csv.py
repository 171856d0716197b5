"""SPOTER CSV reading and writing: round trips, published-file quirks, and errors that say where."""
import ast
import csv
import json
import re

import numpy as np
import pytest

from datasets import layout, spoter_csv
from datasets.errors import DataError
from datasets.sequences import SequenceSet
from datasets.spoter_csv import read_spoter_csv, write_spoter_csv

SHAPE = (layout.NUM_POINTS, layout.NUM_COORDS)


def make_set(lengths=(3, 4, 1, 2), seed=0) -> SequenceSet:
    """Random points with undetected (0) hands and values of very different magnitudes."""
    rng = np.random.default_rng(seed)
    sequences = []
    for n in lengths:
        frames = rng.random((n, *SHAPE), dtype=np.float32)
        frames[rng.random(n) < 0.3, layout.LEFT_HAND_SLICE] = 0.0
        frames[0, 0] = (1.2345678e-30, -987654.3)  # exponents survive the text round trip
        sequences.append(frames)
    labels = np.arange(len(lengths)) % 3
    return SequenceSet.from_sequences(
        sequences, labels, ["hello", "thanks, later", "yes"], video_ids=[f"vid{i}" for i in range(len(lengths))],
        signer_ids=[f"s{i % 2}" for i in range(len(lengths))], splits=[("train", "test")[i % 2] for i in range(len(lengths))])


def assert_same(a: SequenceSet, b: SequenceSet, metadata: bool = True):
    assert a.frames.view(np.uint32).tobytes() == b.frames.view(np.uint32).tobytes()  # bit-identical
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.label_names == b.label_names
    if metadata:
        for name in ("video_ids", "signer_ids", "splits"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_rows(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def read_both_ways(path):
    """The fast reader (which must accept the file) and the careful one."""
    assert spoter_csv._read_fast(np.fromfile(path, dtype=np.uint8)) is not None, "fast path gave up"
    return read_spoter_csv(path), spoter_csv._read_careful(path, None)


def naive_reference(path):
    """What the original implementation did: literal_eval every cell, one array per sample."""
    rows = read_rows(path)
    header, rows = rows[0], rows[1:]
    column = {name: i for i, name in enumerate(header)}
    samples = []
    for row in rows:
        n = len(ast.literal_eval(row[column["leftEar_X"]]))
        sample = np.empty((n, *SHAPE), np.float32)
        for p, name in enumerate(layout.POINT_NAMES):
            for c, coord in enumerate(layout.COORD_NAMES):
                sample[:, p, c] = ast.literal_eval(row[column[f"{name}_{coord}"]])
        samples.append(sample)
    return samples, [int(row[column["labels"]]) for row in rows]


# ------------------------------------------------------------------- round trips
def test_write_then_read_is_identical(tmp_path):
    original = make_set()
    write_spoter_csv(original, tmp_path / "set.csv")
    fast, careful = read_both_ways(tmp_path / "set.csv")
    assert_same(fast, original)
    assert_same(careful, original)


def test_reordered_columns_and_extra_columns(tmp_path):
    original = make_set(seed=1)
    write_spoter_csv(original, tmp_path / "set.csv")
    rows = read_rows(tmp_path / "set.csv")
    order = np.random.default_rng(0).permutation(len(rows[0]))
    extra = [["video_fps", "video_size_height", "comment"]] + [["25.0", "480", "a, b"]] * (len(rows) - 1)
    shuffled = [[row[i] for i in order] + more for row, more in zip(rows, extra)]
    fast, careful = read_both_ways(write_rows(tmp_path / "shuffled.csv", shuffled))
    assert_same(fast, original)
    assert_same(careful, original)


def test_published_style_file_matches_the_naive_reference(tmp_path):
    """Cells as ``str(list)`` of Python floats (", " separators), labels only, extra columns."""
    original = make_set(lengths=(4, 2, 7), seed=2)
    header = ["labels", "video_fps", *reversed(layout.COLUMN_NAMES), "video_size_width"]
    rows = [header]
    for i in range(len(original)):
        columns = dict(zip(layout.COLUMN_NAMES, original.sequence(i).reshape(-1, len(layout.COLUMN_NAMES)).T))
        rows.append([str(original.labels[i]), "30.0", *(str(columns[c].tolist()) for c in header[2:-1]), "640"])
    path = write_rows(tmp_path / "WLASL100_train.csv", rows)
    fast, careful = read_both_ways(path)
    samples, labels = naive_reference(path)
    assert fast.labels.tolist() == labels
    for i, sample in enumerate(samples):
        np.testing.assert_array_equal(fast.sequence(i), sample)
    assert_same(careful, fast)
    assert fast.label_names == ["0", "1", "2"]  # no label_name column, no id_to_label.json
    assert fast.video_ids.tolist() == ["", "", ""]


def test_17_digit_values_round_like_python_floats(tmp_path):
    """Published files hold float64 reprs; each must become float32(float(text)), as in the original."""
    rng = np.random.default_rng(4)
    header = ["labels", *layout.COLUMN_NAMES]
    rows = [header] + [[str(k), *(str((rng.random(n) * 10.0 ** rng.integers(-3, 4)).tolist())
                                   for _ in layout.COLUMN_NAMES)] for k, n in enumerate((40, 90, 65))]
    path = write_rows(tmp_path / "float64.csv", rows)
    fast, careful = read_both_ways(path)
    samples, _ = naive_reference(path)
    for i, sample in enumerate(samples):
        np.testing.assert_array_equal(fast.sequence(i), sample)
    assert_same(careful, fast)


def test_id_to_label_json_beside_the_file_names_the_labels(tmp_path):
    write_spoter_csv(make_set(), tmp_path / "with_names.csv")
    rows = read_rows(tmp_path / "with_names.csv")
    drop = rows[0].index("label_name")
    write_rows(tmp_path / "set.csv", [row[:drop] + row[drop + 1:] for row in rows])
    (tmp_path / "id_to_label.json").write_text(json.dumps({"0": "hello", "1": "thanks, later", "2": "yes", "3": "no"}))
    fast, careful = read_both_ways(tmp_path / "set.csv")
    assert fast.label_names == ["hello", "thanks, later", "yes", "no"]
    assert careful.label_names == fast.label_names


def test_bad_id_to_label_json_is_named(tmp_path):
    write_spoter_csv(make_set(), tmp_path / "set.csv")
    rows = read_rows(tmp_path / "set.csv")
    drop = rows[0].index("label_name")
    write_rows(tmp_path / "set.csv", [row[:drop] + row[drop + 1:] for row in rows])
    (tmp_path / "id_to_label.json").write_text("[\"hello\"]")
    with pytest.raises(DataError, match="id_to_label.json"):
        read_spoter_csv(tmp_path / "set.csv")


def test_utf8_bom_and_crlf_line_ends_are_accepted(tmp_path):
    original = make_set()
    write_spoter_csv(original, tmp_path / "set.csv")
    text = (tmp_path / "set.csv").read_text(encoding="utf-8").replace("\n", "\r\n")
    (tmp_path / "set.csv").write_text(text, encoding="utf-8-sig", newline="")
    fast, careful = read_both_ways(tmp_path / "set.csv")
    assert_same(fast, original)
    assert_same(careful, original)


def test_float_labels_written_by_pandas_are_integers(tmp_path):
    write_spoter_csv(make_set(), tmp_path / "set.csv")
    rows = read_rows(tmp_path / "set.csv")
    for row in rows[1:]:
        row[0] = f"{int(row[0])}.0"
    assert read_spoter_csv(write_rows(tmp_path / "set.csv", rows)).labels.tolist() == [0, 1, 2, 0]


def test_gloss_with_brackets_falls_back_to_the_careful_reader(tmp_path):
    original = make_set()
    original.label_names[0] = "[unknown]"
    write_spoter_csv(original, tmp_path / "set.csv")
    assert spoter_csv._read_fast(np.fromfile(tmp_path / "set.csv", dtype=np.uint8)) is None
    assert_same(read_spoter_csv(tmp_path / "set.csv"), original)


# ------------------------------------------------------------------------ errors
ROW = 3  # file line of the second data row (header = line 1)
COLUMN = "thumbTip_right_Y"


def _cell(rows, column=COLUMN):
    return rows[0].index(column)


def _drop_column(rows):
    i = _cell(rows, "leftEar_Y")
    return [row[:i] + row[i + 1:] for row in rows]


def _set_cell(value, column=COLUMN):
    def mutate(rows):
        rows[ROW - 1][_cell(rows, column)] = value
        return rows
    return mutate


def _edit_values(edit):
    def mutate(rows):
        values = ast.literal_eval(rows[ROW - 1][_cell(rows)])
        rows[ROW - 1][_cell(rows)] = "[" + ",".join(edit([repr(v) for v in values])) + "]"
        return rows
    return mutate


def _empty_row(rows):
    for name in layout.COLUMN_NAMES:
        rows[ROW - 1][_cell(rows, name)] = "[]"
    return rows


def _conflicting_name(rows):
    rows[ROW - 1][_cell(rows, "label_name")] = "goodbye"  # label 1 is also called "thanks, later"
    rows.append(list(rows[ROW - 1]))
    rows[ROW - 1][_cell(rows, "label_name")] = "thanks, later"
    rows[-1][_cell(rows, "labels")] = "1"
    return rows


ERROR_CASES = {
    "missing coordinate column": (_drop_column, [r"missing column\(s\) leftEar_Y"]),
    "ragged lists": (_edit_values(lambda v: v[:-1]), [f"row {ROW}", COLUMN, "ragged"]),
    "non-numeric cell": (_edit_values(lambda v: v[:1] + ["abc"] + v[2:]), [f"row {ROW}", COLUMN, "non-numeric"]),
    "blank value": (_edit_values(lambda v: v[:1] + [" "] + v[2:]), [f"row {ROW}", COLUMN]),
    "not a list": (_set_cell("0.5"), [f"row {ROW}", COLUMN, "bracketed list"]),
    "empty lists": (_empty_row, [f"row {ROW}", "empty coordinate lists"]),
    "one empty list": (_set_cell("[]"), [f"row {ROW}", COLUMN]),
    "NaN": (_edit_values(lambda v: v[:1] + ["nan"] + v[2:]), [f"row {ROW}", COLUMN, "NaN"]),
    "infinity": (_edit_values(lambda v: ["inf"] + v[1:]), [f"row {ROW}", COLUMN, "infinite"]),
    "non-integer label": (_set_cell("1.5", "labels"), [f"row {ROW}", "column labels", "not an integer"]),
    "text label": (_set_cell("one", "labels"), [f"row {ROW}", "column labels", "not an integer"]),
    "infinite label": (_set_cell("inf", "labels"), [f"row {ROW}", "column labels", "not an integer"]),
    "negative label": (_set_cell("-1", "labels"), [f"row {ROW}", "column labels", "negative"]),
    "short row": (lambda rows: rows[:ROW - 1] + [rows[ROW - 1][:-3]] + rows[ROW:], [f"row {ROW}", "fields"]),
    "conflicting gloss names": (_conflicting_name, ["column label_name", "goodbye"]),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_file_raises_a_data_error_naming_file_row_and_column(tmp_path, case):
    mutate, expected = ERROR_CASES[case]
    write_spoter_csv(make_set(), tmp_path / "set.csv")
    path = write_rows(tmp_path / "bad.csv", mutate(read_rows(tmp_path / "set.csv")))
    with pytest.raises(DataError) as raised:
        read_spoter_csv(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    for part in expected:
        assert re.search(part, message), f"{part!r} not in {message!r}"


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_spoter_csv(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_spoter_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(",".join(["labels", *layout.COLUMN_NAMES]) + "\n")
    with pytest.raises(DataError, match="no data rows"):
        read_spoter_csv(tmp_path / "header.csv")


def test_writing_is_atomic_and_leaves_no_temporary_files(tmp_path):
    write_spoter_csv(make_set(), tmp_path / "set.csv")
    write_spoter_csv(make_set(lengths=(2,)), tmp_path / "set.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["set.csv"]
    assert len(read_spoter_csv(tmp_path / "set.csv")) == 1


def test_two_thread_parse_gives_the_same_result(tmp_path, monkeypatch):
    """Large files are parsed in two halves; force that path on a small file."""
    original = make_set(lengths=(5, 1, 3, 2, 4), seed=3)
    write_spoter_csv(original, tmp_path / "set.csv")
    monkeypatch.setattr(spoter_csv, "_THREADED_PARSE_BYTES", 0)
    fast, careful = read_both_ways(tmp_path / "set.csv")
    assert_same(fast, original)
    assert_same(careful, original)
