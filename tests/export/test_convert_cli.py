"""convert.py as a command: outputs and printed tables, and one-line errors with the right exit status."""
import stat
from pathlib import Path

import pytest

import convert
from datasets.errors import DataError, UsageError
from entrypoint import run_cli
from export.source import load_source, prepare_output_folder


def cli(argv, capsys):
    code = run_cli(convert.main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
def test_convert_writes_models_json_and_prints_tables(converted):
    folder, done = converted
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["model.json", "model.onnx", "model_int8.onnx"]
    assert "onnxruntime: PASS" in done.stdout
    assert "max|onnxruntime-torch|" in done.stdout
    assert "int8 vs fp32" in done.stdout and "kNN top-1" in done.stdout
    assert "wrote" in done.stdout.splitlines()[-1]
    assert all(p.stat().st_mode & stat.S_IRGRP for p in folder.iterdir())  # readable by a web server


def test_not_a_checkpoint(tmp_path, capsys):
    bogus = tmp_path / "notes.pth"
    bogus.write_text("this is not a checkpoint\n")
    code, _, err = cli(["-c", str(bogus), "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1
    assert "notes.pth" in one_line_error(err) and "not a loadable checkpoint" in err


def test_missing_checkpoint(tmp_path, capsys):
    code, _, err = cli(["-c", str(tmp_path / "nope.pth"), "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1 and "checkpoint not found" in one_line_error(err)


def test_config_missing_fields(make_checkpoint, tmp_path, capsys):
    def drop(payload):
        del payload["model_config"]["dim_feedforward"]
        del payload["model_config"]["num_heads"]
    code, _, err = cli(["-c", str(make_checkpoint(drop)), "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1
    line = one_line_error(err)
    assert "model_config is missing field(s)" in line and "dim_feedforward" in line and "num_heads" in line


def test_checkpoint_without_model_config(make_checkpoint, tmp_path, capsys):
    code, _, err = cli(["-c", str(make_checkpoint(lambda p: p.pop("model_config"))),
                        "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1 and "missing model_config" in one_line_error(err)


def test_checkpoint_without_normalization(make_checkpoint, tmp_path, capsys):
    code, _, err = cli(["-c", str(make_checkpoint(lambda p: p.pop("normalization"))),
                        "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1 and "normalization" in one_line_error(err)
    path = make_checkpoint(lambda p: p["normalization"].pop("body"))
    with pytest.raises(DataError, match="normalization is missing field.*body"):
        load_source(path)


def test_weights_that_do_not_fit_the_config(make_checkpoint, tmp_path, capsys):
    path = make_checkpoint(lambda p: p["model_config"].update(dim_feedforward=32))
    code, _, err = cli(["-c", str(path), "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1 and "does not match its model config" in one_line_error(err)


def test_classifier_checkpoint_is_refused(make_checkpoint, tmp_path, capsys):
    path = make_checkpoint(classification=True, num_classes=3)
    code, _, err = cli(["-c", str(path), "--output-folder", str(tmp_path / "out")], capsys)
    assert code == 1 and "classification checkpoint" in one_line_error(err)


def test_unwritable_output_folder(small_checkpoint, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = cli(["-c", str(small_checkpoint), "--output-folder", str(blocker / "sub")], capsys)
    assert code == 1 and "output folder is not writable" in one_line_error(err)


def test_read_only_output_folder(tmp_path, monkeypatch):
    """A folder the user may not write to (simulated: root ignores permission bits)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    real_write_bytes = Path.write_bytes

    def refuse(self, data):
        if self.parent == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(DataError, match=r"ro: output folder is not writable \(Permission denied\)"):
        prepare_output_folder(folder)
    assert list(folder.iterdir()) == []


def test_output_folder_that_is_a_file(small_checkpoint, tmp_path, capsys):
    target = tmp_path / "model.onnx"
    target.write_text("x")
    code, _, err = cli(["-c", str(small_checkpoint), "--output-folder", str(target)], capsys)
    assert code == 2 and "is not a folder" in one_line_error(err)


@pytest.mark.parametrize("extra, message", [
    (["--opset", "11"], "opset"),
    (["--fp16"], "add --tflite"),
    (["--frames", "50"], "add --tflite"),
    (["--validation-set", "x.csv"], "add --quantize int8"),
    (["--quantize", "int8", "--validation-set", "does-not-exist.csv"], "no such file"),
])
def test_usage_errors_exit_2_before_any_work(small_checkpoint, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code, _, err = cli(["-c", str(small_checkpoint), "--output-folder", str(out), *extra], capsys)
    assert code == 2 and message in one_line_error(err)
    assert not out.exists()


def test_too_many_tflite_frames_for_the_positional_table(small_model):
    from export.tflite_export import check_frames
    assert check_frames(512, small_model) == 512
    with pytest.raises(UsageError, match="exceeds the model's positional table"):
        check_frames(513, small_model)
