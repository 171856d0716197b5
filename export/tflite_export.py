"""ONNX -> TFLite through onnx2tf + TensorFlow, checked with the LiteRT interpreter.

onnx2tf needs a static graph, so this exports its own fixed-shape ONNX (batch 1,
``frames`` frames). It runs in a subprocess: TensorFlow's start-up, memory and logs
stay out of this process, and onnx2tf rewrites its input file and shells out to
``onnxsim`` (found through the venv's ``bin/`` on PATH). onnx2tf lets the converter
fall back to TensorFlow (Flex) kernels, which the plain TFLite runtime cannot run, so
the flatbuffer's operator table is checked afterwards.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datasets.atomic import atomic_write
from datasets.errors import DataError, UsageError
from export.onnx_export import INPUT_NAMES, MIN_OPSET, export_model_onnx
from export.source import make_readable
from export.validate import TOLERANCE, ValidationTable, compare

log = logging.getLogger(__name__)

DEFAULT_FRAMES = 100
TFLITE_FILE = "model.tflite"
TFLITE_FP16_FILE = "model_fp16.tflite"
FP16_TOLERANCE = 5e-3  # float16 weights: ~3 significant digits
CONVERSION_PACKAGES = {"onnx2tf": "onnx2tf", "tensorflow": "tensorflow", "tf_keras": "tf-keras",
                       "onnxsim": "onnxsim", "onnx_graphsurgeon": "onnx-graphsurgeon",
                       "ai_edge_litert": "ai-edge-litert"}
CONVERTER_TIMEOUT_S = 1800
VALIDATION_CASES = 4  # one unpadded clip + padded ones


@dataclass
class TfliteResult:
    path: Path
    frames: int
    operators: list[str]
    validation: ValidationTable
    fp16_path: Path | None = None
    fp16_validation: ValidationTable | None = None
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)

    def files_entry(self) -> dict:
        """The ``files.tflite`` entry of model.json."""
        entry = {"file": self.path.name, "batch": 1, "frames": self.frames, "input_names": self.input_names,
                 "output_names": self.output_names, "operators": self.operators}
        if self.fp16_path is not None:
            entry["fp16_file"] = self.fp16_path.name
        return entry


def missing_conversion_packages() -> list[str]:
    return [dist for module, dist in CONVERSION_PACKAGES.items() if importlib.util.find_spec(module) is None]


def require_conversion_packages() -> None:
    missing = missing_conversion_packages()
    if missing:
        raise UsageError(f"--tflite needs the conversion packages ({', '.join(missing)} missing): "
                         "pip install -r conversion_requirements.txt")


def check_frames(frames: int, model: torch.nn.Module) -> int:
    config = model.config
    if frames < 1:
        raise UsageError(f"--frames must be >= 1, got {frames}")
    if config.positional_encoding == "learned" and frames > config.max_frames:
        raise UsageError(f"--frames {frames} exceeds the model's positional table ({config.max_frames} frames)")
    return frames


def run_onnx2tf(onnx_path: Path, work_dir: Path) -> tuple[Path, Path]:
    """Convert a static ONNX file; returns the float32 and float16 .tflite paths inside ``work_dir``."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "TF_CPP_MIN_LOG_LEVEL": "2",
           "CUDA_VISIBLE_DEVICES": "-1"}
    copy = work_dir / "static.onnx"  # onnx2tf rewrites its input in place
    shutil.copyfile(onnx_path, copy)
    out = work_dir / "tf"
    # -kat: keep (B, T, 54, 2) / (B, T) as they are (no NCHW->NHWC transposition);
    # -n: errors only in the log.
    cmd = [sys.executable, "-m", "onnx2tf", "-i", str(copy), "-o", str(out), "-kat", *INPUT_NAMES, "-n"]
    log.info("running onnx2tf (TensorFlow conversion, about a minute)")
    try:
        done = subprocess.run(cmd, env=env, cwd=work_dir, capture_output=True, text=True,
                              timeout=CONVERTER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DataError(f"onnx2tf did not finish within {CONVERTER_TIMEOUT_S} s") from None
    log.debug("onnx2tf output:\n%s\n%s", done.stdout, done.stderr)
    float32, float16 = out / "static_float32.tflite", out / "static_float16.tflite"
    if done.returncode != 0 or not float32.is_file():
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        hint = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
        raise DataError(f"onnx2tf failed (exit {done.returncode}): {hint.strip()[:300]}")
    return float32, float16


def tflite_operators(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Builtin operator names and custom operator codes listed in a .tflite flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema
    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    builtin, custom = set(), set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes above 127 live in builtin_code; older files only set the deprecated byte.
        op = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if op == schema.BuiltinOperator.CUSTOM:
            custom.add((code.CustomCode() or b"?").decode())
        else:
            builtin.add(names.get(op, str(op)))
    return sorted(builtin), sorted(custom)


def check_builtin_only(path: Path) -> list[str]:
    """Refuse Flex (SELECT_TF_OPS) and other custom ops: the plain TFLite runtime cannot run them."""
    builtin, custom = tflite_operators(path)
    if custom:
        flex = [c for c in custom if c.startswith("Flex")]
        kind = "Flex (TensorFlow) ops" if flex else "custom ops"
        raise DataError(f"{path.name}: conversion produced {kind} the TFLite runtime cannot run: {', '.join(custom)}")
    return builtin


def tflite_runner(path: str | os.PathLike, threads: int = 1):
    """A runner over the LiteRT interpreter; also returns its input and output tensor names."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()

    def find(name: str, dtype) -> int:
        by_name = [d for d in inputs if name in d["name"]]
        by_type = [d for d in inputs if d["dtype"] == dtype]
        chosen = by_name or by_type
        if len(chosen) != 1:
            raise DataError(f"{Path(path).name}: cannot tell which TFLite input is {name!r} "
                            f"(inputs: {[d['name'] for d in inputs]})")
        return chosen[0]["index"]

    landmarks_index, mask_index = find(INPUT_NAMES[0], np.float32), find(INPUT_NAMES[1], np.bool_)
    output_index = outputs[0]["index"]

    def run(landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(landmarks_index, np.ascontiguousarray(landmarks, dtype=np.float32))
        interpreter.set_tensor(mask_index, np.ascontiguousarray(mask, dtype=np.bool_))
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return run, [d["name"] for d in inputs], [d["name"] for d in outputs]


def validate_tflite(model: torch.nn.Module, path: Path, frames: int, tolerance: float = TOLERANCE,
                    runtime: str = "tflite") -> tuple[ValidationTable, list[str], list[str]]:
    """LiteRT interpreter vs PyTorch at the file's static shape, unpadded and padded."""
    from export.validate import ValidationError
    try:
        runner, input_names, output_names = tflite_runner(path)
    except (RuntimeError, ValueError) as error:  # the interpreter rejects a broken conversion at load time
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValidationError(f"{runtime}: the LiteRT interpreter cannot run the converted model ({text[:300]})") \
            from error
    cases = [(1, frames, False)] + [(1, frames, True)] * (VALIDATION_CASES - 1 if frames > 1 else 0)
    table = compare(model, runner, runtime, cases, tolerance)
    return table, input_names, output_names


def _install(src: Path, dst: Path) -> Path:
    with atomic_write(dst, "wb") as handle:
        handle.write(src.read_bytes())
    return make_readable(dst)


def export_tflite(model: torch.nn.Module, out_dir: str | os.PathLike, frames: int = DEFAULT_FRAMES,
                  fp16: bool = False, opset: int = MIN_OPSET,
                  report: Callable[[str], None] | None = None, streamlined: bool = True) -> TfliteResult:
    """Static ``(1, frames)`` TFLite model(s) in ``out_dir``, operator-checked and validated.

    Raises :class:`export.validate.ValidationError` if LiteRT and PyTorch disagree; no
    file is written in that case. ``report`` receives each validation table.
    """
    report = report or log.info
    require_conversion_packages()
    check_frames(frames, model)
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="spoter-tflite-") as tmp:
        work = Path(tmp)
        static = export_model_onnx(model, work / "static-export.onnx", opset, frames=frames, batch=1,
                                   streamlined=streamlined)
        float32, float16 = run_onnx2tf(static, work)
        operators = check_builtin_only(float32)
        table, input_names, output_names = validate_tflite(model, float32, frames)
        report(table.format())
        table.raise_on_failure(TFLITE_FILE)
        fp16_table = None
        if fp16:
            check_builtin_only(float16)
            fp16_table, _, _ = validate_tflite(model, float16, frames, FP16_TOLERANCE, "tflite-fp16")
            report(fp16_table.format())
            fp16_table.raise_on_failure(TFLITE_FP16_FILE)
        result = TfliteResult(path=_install(float32, out_dir / TFLITE_FILE), frames=frames, operators=operators,
                              validation=table, input_names=input_names, output_names=output_names)
        if fp16:
            result.fp16_path = _install(float16, out_dir / TFLITE_FP16_FILE)
            result.fp16_validation = fp16_table
    return result
