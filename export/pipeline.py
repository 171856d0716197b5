"""The whole ``convert.py`` run: checkpoint -> validated ONNX (+ int8, + TFLite) -> model.json.

The fp32 ONNX and TFLite models are validated before they are written (int8 gets a drift
report instead), and model.json is written last, so a folder with a model.json always
describes files that passed their checks.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datasets.errors import UsageError
from export.metadata import MODEL_JSON, write_model_json
from export.onnx_export import MIN_OPSET, ONNX_FILE, check_opset, export_validated, save_proto
from export.source import load_source, prepare_output_folder
from export.validate import ValidationTable

log = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("int8",)


@dataclass
class ConversionResult:
    onnx_path: Path
    validation: ValidationTable
    model_json: Path | None = None
    int8_path: Path | None = None
    int8_report: dict | None = None
    tflite: object | None = None  # export.tflite_export.TfliteResult


def _summary(table: ValidationTable) -> dict:
    rows = table.rows
    return {"runtime": table.runtime, "passed": table.passed, "max_abs_diff": table.max_abs_diff,
            "tolerance": table.tolerance, "cases": len(rows),
            "batches": sorted({r.batch for r in rows}), "frames": sorted({r.frames for r in rows})}


def check_options(opset: int, tflite: bool, frames: int | None, fp16: bool, quantize: str | None,
                  validation_set) -> None:
    """Usage errors first, before anything slow runs."""
    check_opset(opset)
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise UsageError(f"--quantize {quantize!r}: choose one of {', '.join(QUANTIZE_CHOICES)}")
    if (fp16 or frames is not None) and not tflite:
        raise UsageError("--fp16 and --frames apply to the static TFLite export: add --tflite")
    if validation_set is not None:
        if quantize is None:
            raise UsageError("--validation-set is used by --quantize int8's report: add --quantize int8")
        if not Path(validation_set).exists():
            raise UsageError(f"--validation-set {validation_set}: no such file or folder")
    if tflite:
        from export.tflite_export import require_conversion_packages
        require_conversion_packages()


def convert(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, opset: int = MIN_OPSET,
            tflite: bool = False, frames: int | None = None, fp16: bool = False, quantize: str | None = None,
            validation_set: str | os.PathLike | None = None,
            report: Callable[[str], None] = log.info) -> ConversionResult:
    """Export ``checkpoint`` into ``out_dir``; ``report`` receives the validation tables and summaries."""
    check_options(opset, tflite, frames, fp16, quantize, validation_set)
    out_dir = prepare_output_folder(out_dir)
    source = load_source(checkpoint)
    model = source.model
    if tflite:
        from export.tflite_export import DEFAULT_FRAMES, check_frames
        check_frames(frames or DEFAULT_FRAMES, model)
    log.info("exporting %s to ONNX (opset %d, dynamic batch and frames)", source.path, opset)
    proto, table, streamlined = export_validated(model, opset)
    report(table.format())
    table.raise_on_failure(out_dir / ONNX_FILE)
    # An old model.json would describe the previous model until this run finishes; drop it
    # first, so a run that fails half-way leaves a folder without one rather than a wrong one.
    (out_dir / MODEL_JSON).unlink(missing_ok=True)
    onnx_path = save_proto(proto, out_dir / ONNX_FILE)
    files: dict = {}
    validation = {"onnx": {**_summary(table), "graph": "streamlined" if streamlined else "module"}}
    result = ConversionResult(onnx_path=onnx_path, validation=table)

    if quantize == "int8":
        from export.quantize import (
            INT8_FILE,
            MAX_TOP1_CHANGE_POINTS,
            format_report,
            int8_report,
            quantize_int8,
            validation_clips,
        )
        result.int8_path = quantize_int8(onnx_path, out_dir / INT8_FILE)
        data = validation_clips(source.normalization, validation_set)
        metric = (source.checkpoint.get("config") or {}).get("distance", "euclidean")
        result.int8_report = int8_report(onnx_path, result.int8_path, data, metric)
        report(format_report(result.int8_report))
        if abs(result.int8_report["top1_change_points"]) > MAX_TOP1_CHANGE_POINTS:
            log.warning("int8 changes kNN top-1 by %.2f points (more than %.0f)",
                        result.int8_report["top1_change_points"], MAX_TOP1_CHANGE_POINTS)
        files["onnx_int8"] = INT8_FILE
        validation["int8"] = result.int8_report

    if tflite:
        from export.tflite_export import DEFAULT_FRAMES, export_tflite
        result.tflite = export_tflite(model, out_dir, frames or DEFAULT_FRAMES, fp16=fp16, opset=opset,
                                      report=report, streamlined=streamlined)
        for t in (result.tflite.validation, result.tflite.fp16_validation):
            if t is not None:
                validation[t.runtime] = _summary(t)
        files["tflite"] = result.tflite.files_entry()

    result.model_json = write_model_json(source, out_dir, opset, files, validation)
    return result
