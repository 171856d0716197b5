"""The published SPOTER CSV format, read and written without ``eval``.

One row per sample; one column per coordinate (``leftEar_X``) whose cell is a
bracketed list of per-frame values; an integer ``labels`` column and optional
``label_name``, ``video_id``, ``signer_id`` and ``split`` columns. Extra columns are
ignored, so the published WLASL100/LSA64 files load unchanged.

Reading is vectorised: the lists are located by their brackets with numpy, every
number in the file is parsed by pandas' C parser (two threads), and the values are
reordered to ``(frames, 54, 2)`` with one gather. Files that are not plainly well
formed go to a careful reader that names the bad row and column.
"""
from __future__ import annotations

import csv
import io
import json
import operator
import os
import re
import sys
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from datasets import layout
from datasets.errors import DataError
from datasets.formats import MAX_ABS_COORDINATE
from datasets.sequences import SequenceSet
from datasets.atomic import atomic_write

LABEL_COLUMN = "labels"
META_COLUMNS = ("label_name", "video_id", "signer_id", "split")
_N_COLUMNS = len(layout.COLUMN_NAMES)
_THREADED_PARSE_BYTES = 1 << 20  # below this, a second thread costs more than it saves
_GATHER_FRAMES = 1 << 15
_BLANK_VALUE = re.compile(r"(?:^|,)\s*(?:,|$)")

csv.field_size_limit(sys.maxsize)


def _cell_length(cell: str) -> int:
    body = cell[1:-1].strip()
    return body.count(",") + 1 if body else 0


def _locate_bad_cell(path, header, coord_cols, rows, row_offset) -> str:
    """Slow path, only after the fast parser failed: find the first cell that is not numeric."""
    for r, row in enumerate(rows):
        for c in coord_cols:
            body = row[c].strip()[1:-1]
            try:
                [float(v) for v in body.split(",")]
            except ValueError:
                return f"{path}: row {r + row_offset}, column {header[c]}: non-numeric or blank value in {row[c][:40]!r}"
    return f"{path}: could not parse the coordinate lists"


def read_spoter_csv(path: str | os.PathLike, label_names_file: str | os.PathLike | None = None) -> SequenceSet:
    """Load a SPOTER CSV; a bad row raises :class:`DataError` naming file, row and column.

    Gloss names come from a ``label_name`` column, else from ``id_to_label.json``
    beside the file (or ``label_names_file``), else the label ids as text.
    """
    path = Path(path)
    parsed = _read_fast(_read_bytes(path))  # no reference kept here: the reader frees the bytes early
    if parsed is None:  # anything unusual: the careful reader finds and names the problem
        return _read_careful(path, label_names_file)
    rows, header, frames, offsets = parsed
    return _assemble(path, rows, header, frames, offsets, label_names_file)


def _read_bytes(path: Path) -> np.ndarray:
    """The file as a writable uint8 array (the fast reader edits it in place)."""
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error})") from None


class _ViewReader:
    """File-like reads from a memoryview, so the parser never needs a copy of the whole input."""

    def __init__(self, view: memoryview):
        self.view, self.position = view, 0

    def read(self, size: int = -1) -> bytes:
        stop = len(self.view) if size is None or size < 0 else min(self.position + size, len(self.view))
        chunk, self.position = bytes(self.view[self.position:stop]), stop
        return chunk

    def __iter__(self):  # pandas only treats objects with both read and __iter__ as files
        return iter(())


def _parse_floats(stream: memoryview, cut: int | None = None) -> np.ndarray:
    """Comma-terminated numbers -> float32 with pandas' C parser; blank fields become NaN.

    Each comma ends a "line", so the parser never builds a 2-D table. With ``cut`` (the
    position of a comma) the two halves are parsed on two threads (the parser releases
    the GIL).
    """
    def parse(chunk: memoryview) -> np.ndarray:
        frame = pd.read_csv(_ViewReader(chunk), header=None, names=["v"], dtype=np.float32, engine="c",
                            lineterminator=",", sep="\t", quoting=csv.QUOTE_NONE, skipinitialspace=True,
                            skip_blank_lines=False)
        return frame["v"].to_numpy()
    if cut is None:
        return parse(stream)
    with ThreadPoolExecutor(2) as pool:
        return np.concatenate(list(pool.map(parse, (stream[:cut], stream[cut + 1:]))))


def _read_fast(data):
    """Vectorised reader for well-formed files: every list is found by its brackets at once.

    ``data`` (the file's bytes, a writable buffer) is overwritten. Returns None whenever
    the file is not plainly well formed, so the careful reader can say what is wrong.
    Kept as one function: its steps share a dozen index arrays over the same buffer, and
    splitting them out would pass those arrays around without making a step reusable.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if not buf.flags.writeable:
        buf = buf.copy()
    opens, closes = np.flatnonzero(buf == ord("[")), np.flatnonzero(buf == ord("]"))
    if len(opens) == 0 or len(opens) != len(closes) or np.any(closes < opens) or np.any(opens[1:] < closes[:-1]):
        return None
    # Bytes outside the lists (brackets included): header, quotes, labels, extra columns.
    gap_starts = np.concatenate([[0], closes])
    gap_lengths = np.concatenate([opens + 1, [len(buf)]]) - gap_starts
    gap_offsets = np.concatenate([[0], np.cumsum(gap_lengths)])
    outside = np.repeat(gap_starts - gap_offsets[:-1], gap_lengths) + np.arange(gap_offsets[-1])
    try:
        text = buf[outside].tobytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error:
        return None
    if len(rows) < 2:
        return None
    header, rows = rows[0], rows[1:]
    bracket_cols = [i for i, cell in enumerate(rows[0]) if cell.strip() == "[]"]
    position = {name: i for i, name in enumerate(header)}
    if any(c not in position for c in (LABEL_COLUMN, *layout.COLUMN_NAMES)):
        return None
    if sorted(position[c] for c in layout.COLUMN_NAMES) != bracket_cols or len(bracket_cols) * len(rows) != len(opens):
        return None
    list_cells, expected = operator.itemgetter(*bracket_cols), ("[]",) * len(bracket_cols)
    if any(len(row) != len(header) or list_cells(row) != expected for row in rows):
        return None

    # Turn the file into one stream of comma-terminated numbers: every list opens with
    # an empty field (parsed as NaN, a marker that also gives each list's length) and
    # everything outside the lists becomes blanks.
    buf[outside] = ord(" ")
    buf[opens] = buf[closes] = ord(",")
    middle = len(closes) // 2
    cut = int(closes[middle - 1] - opens[0]) if closes[-1] - opens[0] > _THREADED_PARSE_BYTES else None
    try:
        values = _parse_floats(memoryview(buf)[opens[0]:closes[-1]], cut)
    except (ValueError, pd.errors.ParserError):
        return None
    del data, buf, outside  # the file's bytes are no longer needed: free them before the gather
    markers = np.flatnonzero(np.isnan(values))
    if len(markers) != len(opens) or len(values) - np.count_nonzero(np.isfinite(values)) != len(markers):
        return None  # a value was blank, NaN or infinite
    if len(values) and max(np.fmax.reduce(values), -np.fmin.reduce(values)) > MAX_ABS_COORDINATE:
        return None  # not landmarks (fmax/fmin skip the NaN markers without a temporary copy)
    counts = (np.diff(np.append(markers, len(values))) - 1).reshape(len(rows), len(bracket_cols))
    lengths = counts[:, 0]
    if np.any(counts != lengths[:, None]) or np.any(lengths == 0):
        return None
    # values are ordered [row][file column][frame]; gather into [frame][layout column].
    file_slot = np.searchsorted(bracket_cols, [position[c] for c in layout.COLUMN_NAMES])  # rank in file order
    index_type = np.int32 if len(values) < np.iinfo(np.int32).max else np.int64
    first_value = (markers + 1).astype(index_type).reshape(len(rows), len(bracket_cols))[:, file_slot]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    row_of_frame = np.repeat(np.arange(len(rows)), lengths)
    frame_in_row = (np.arange(offsets[-1]) - offsets[row_of_frame]).astype(index_type)
    frames = np.empty((offsets[-1], _N_COLUMNS), np.float32)
    for start in range(0, len(frames), _GATHER_FRAMES):  # in blocks, so the index array stays small
        block = slice(start, start + _GATHER_FRAMES)
        source = first_value[row_of_frame[block]] + frame_in_row[block, None]  # (frames, 108)
        np.take(values, source, out=frames[block])
    return rows, header, frames.reshape(-1, layout.NUM_POINTS, layout.NUM_COORDS), offsets


def _read_careful(path: Path, label_names_file) -> SequenceSet:
    """Row-by-row reader for files the fast reader refuses: names the first bad row and what is wrong.

    One function on purpose: it walks the rows once, in order, and each check needs the
    row number and the header read above it.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:  # newline="": quoted line breaks stay as written
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({error})") from None
    if not rows:
        raise DataError(f"{path}: empty file, expected a header row")
    header, rows = rows[0], [r for r in rows[1:] if r]
    position = {name: i for i, name in enumerate(header)}
    missing = [c for c in (LABEL_COLUMN, *layout.COLUMN_NAMES) if c not in position]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    if not rows:
        raise DataError(f"{path}: no data rows")
    coord_cols = [position[c] for c in layout.COLUMN_NAMES]
    column_in_file = np.arange(_N_COLUMNS)[None, :]  # cells are gathered in layout order below
    row_offset = 2  # rows are reported as line numbers of the file (header = line 1)

    cells = []
    for r, row in enumerate(rows):
        if len(row) != len(header):
            raise DataError(f"{path}: row {r + row_offset}: {len(row)} fields, header has {len(header)}")
        cells.extend(row[c] for c in coord_cols)
    for i, cell in enumerate(cells):
        cell = cell.strip()
        if len(cell) < 2 or cell[0] != "[" or cell[-1] != "]":
            r, c = divmod(i, _N_COLUMNS)
            raise DataError(f"{path}: row {r + row_offset}, column {layout.COLUMN_NAMES[c]}: "
                            f"expected a bracketed list, got {cell[:40]!r}")
    counts = np.fromiter((_cell_length(c) for c in cells), dtype=np.int64, count=len(cells)).reshape(len(rows), _N_COLUMNS)
    lengths = counts[:, 0]
    bad_rows = np.flatnonzero((counts != lengths[:, None]).any(axis=1) | (lengths == 0))
    if bad_rows.size:
        r = int(bad_rows[0])
        if lengths[r] == 0 and (counts[r] == 0).all():
            raise DataError(f"{path}: row {r + row_offset}: empty coordinate lists (zero frames)")
        c = int(np.flatnonzero(counts[r] != np.bincount(counts[r]).argmax())[0])
        raise DataError(f"{path}: row {r + row_offset}, column {layout.COLUMN_NAMES[c]}: {counts[r, c]} values "
                        f"but the row's other columns have {np.bincount(counts[r]).argmax()} (ragged lists)")

    joined = ",".join(c.strip()[1:-1] for c in cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            values = np.fromstring(joined, dtype=np.float32, sep=",")
        except ValueError:
            values = np.empty(0, np.float32)
    # np.fromstring reads a blank element as -1 instead of failing, so blanks are looked for first.
    if values.size != counts.sum() or _BLANK_VALUE.search(joined):
        raise DataError(_locate_bad_cell(path, header, coord_cols, rows, row_offset))
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        cell = int(np.searchsorted(np.cumsum(counts.ravel()), bad, side="right"))
        r, c = divmod(cell, _N_COLUMNS)
        raise DataError(f"{path}: row {r + row_offset}, column {layout.COLUMN_NAMES[c]}: NaN or infinite value")
    if values.size and np.abs(values).max() > MAX_ABS_COORDINATE:
        bad = int(np.flatnonzero(np.abs(values) > MAX_ABS_COORDINATE)[0])
        cell = int(np.searchsorted(np.cumsum(counts.ravel()), bad, side="right"))
        r, c = divmod(cell, _N_COLUMNS)
        raise DataError(f"{path}: row {r + row_offset}, column {layout.COLUMN_NAMES[c]}: value {values[bad]:.3g} is "
                        f"not an image-relative coordinate (|value| <= {MAX_ABS_COORDINATE:g} expected)")

    # values are ordered [row][column][frame]; gather them into [frame][column].
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    row_of_frame = np.repeat(np.arange(len(rows)), lengths)
    frame_in_row = np.arange(offsets[-1]) - offsets[row_of_frame]
    block_start = offsets[row_of_frame] * _N_COLUMNS
    source = block_start[:, None] + (column_in_file * lengths[row_of_frame][:, None]) + frame_in_row[:, None]
    frames = values[source].reshape(-1, layout.NUM_POINTS, layout.NUM_COORDS)
    return _assemble(path, rows, header, frames, offsets, label_names_file)


def _assemble(path, rows, header, frames, offsets, label_names_file) -> SequenceSet:
    """Labels and per-sample metadata from the parsed rows."""
    row_offset = 2
    position = {name: i for i, name in enumerate(header)}
    label_col = position[LABEL_COLUMN]
    bad = next((r for r, row in enumerate(rows) if not _is_int(row[label_col])), None)
    if bad is not None:
        raise DataError(f"{path}: row {bad + row_offset}, column labels: not an integer: {rows[bad][label_col]!r}")
    labels = np.asarray([int(float(row[label_col])) for row in rows], dtype=np.int64)
    if labels.min() < 0:
        r = int(np.argmin(labels))
        raise DataError(f"{path}: row {r + row_offset}, column labels: negative label {labels[r]}")

    meta = {name: ([row[position[name]] for row in rows] if name in position else None) for name in META_COLUMNS}
    label_names = _label_names(path, labels, meta["label_name"], label_names_file)
    return SequenceSet(frames, offsets, labels, label_names, meta["video_id"], meta["signer_id"], meta["split"])


def _is_int(text: str) -> bool:
    """``"3"`` and ``"3.0"`` (as pandas may write labels) are integers; ``"1.5"``, ``"nan"`` are not."""
    try:
        return float(text).is_integer()
    except ValueError:
        return False


def _label_names(path: Path, labels: np.ndarray, names_column, label_names_file) -> list[str]:
    count = int(labels.max()) + 1
    if names_column is not None:
        names = [str(i) for i in range(count)]
        seen: dict[int, str] = {}
        for r, (label, name) in enumerate(zip(labels.tolist(), names_column)):
            if seen.setdefault(label, name) != name:
                raise DataError(f"{path}: row {r + 2}, column label_name: label {label} is named both "
                                f"{seen[label]!r} and {name!r}")
            names[label] = name
        return names
    names_file = Path(label_names_file) if label_names_file else path.parent / "id_to_label.json"
    if names_file.exists():
        try:
            mapping = {int(k): str(v) for k, v in json.loads(names_file.read_text()).items()}
        except (ValueError, AttributeError) as error:
            raise DataError(f"{names_file}: expected a JSON object {{label id: gloss}} ({error})") from None
        return [mapping.get(i, str(i)) for i in range(max(count, max(mapping, default=-1) + 1))]
    return [str(i) for i in range(count)]


def write_spoter_csv(dataset: SequenceSet, path: str | os.PathLike, flush_rows: int = 256) -> None:
    """Write ``dataset`` in the SPOTER CSV format (atomically), with gloss/video/signer columns.

    Coordinate cells are formatted with one ``%`` operation per row (9 significant digits
    round-trip float32) and quoted only when they contain a comma; text columns go through
    ``csv.writer``. Rows are streamed to the file in chunks, never built whole in memory.
    """
    with atomic_write(path, "w") as handle:
        parts: list[str] = []
        text_columns = csv.writer(types.SimpleNamespace(write=parts.append), lineterminator="\n")
        # csv quotes a field holding "\n" (the line terminator) but not a lone "\r", which a
        # reader then takes for a line break: such rows are written fully quoted.
        quoted_columns = csv.writer(types.SimpleNamespace(write=parts.append), lineterminator="\n",
                                    quoting=csv.QUOTE_ALL)
        csv.writer(handle, lineterminator="\n").writerow([LABEL_COLUMN, *META_COLUMNS, *layout.COLUMN_NAMES])
        for i in range(len(dataset)):
            label = int(dataset.labels[i])
            texts = [label, dataset.label_names[label], dataset.video_ids[i], dataset.signer_ids[i], dataset.splits[i]]
            (quoted_columns if any("\r" in str(t) for t in texts) else text_columns).writerow(texts)
            parts[-1] = parts[-1][:-1] + ","  # the row continues with the coordinate cells
            sequence = dataset.sequence(i)
            frames = len(sequence)
            quote = '"' if frames > 1 else ""
            cell = f"{quote}[" + ",".join(["%.9g"] * frames) + f"]{quote}"
            parts.append(",".join([cell] * _N_COLUMNS) % tuple(sequence.reshape(frames, -1).T.ravel().tolist()))
            parts.append("\n")
            if len(parts) > 3 * flush_rows:
                handle.write("".join(parts))
                parts.clear()
        handle.write("".join(parts))
