"""Checkpoint -> ONNX (dynamic batch and frames) / int8 ONNX / TFLite, each validated, plus model.json.

``convert`` runs the whole job (what ``convert.py`` calls); the parts are importable on
their own, e.g. ``export_onnx(checkpoint, out_dir)`` then ``write_model_json(checkpoint, out_dir)``.
"""
from export.metadata import MODEL_JSON, build_model_json, write_model_json
from export.onnx_export import INPUT_NAMES, ONNX_FILE, OUTPUT_NAME, export_model_onnx, export_onnx
from export.pipeline import ConversionResult, convert
from export.quantize import INT8_FILE, quantize_int8
from export.source import ExportSource, load_source
from export.tflite_export import TFLITE_FILE, export_tflite
from export.validate import ValidationError, ValidationTable, validate_onnx

__all__ = [
    "convert", "ConversionResult", "export_onnx", "export_model_onnx", "export_tflite", "quantize_int8",
    "validate_onnx", "ValidationError", "ValidationTable", "write_model_json", "build_model_json",
    "load_source", "ExportSource", "INPUT_NAMES", "OUTPUT_NAME", "ONNX_FILE", "INT8_FILE", "TFLITE_FILE",
    "MODEL_JSON",
]
