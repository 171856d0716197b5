"""Export a trained checkpoint: ``python convert.py -c CHECKPOINT --output-folder F [--tflite] [--quantize int8]``.

Writes ``F/model.onnx`` (dynamic batch and frames), ``F/model.json`` and, on request,
``F/model_int8.onnx`` and ``F/model.tflite``; each is validated against PyTorch and
the tables are printed. Thin: the work is done by :mod:`export`.
Exit status: 0 success, 1 failure (bad checkpoint, validation failed, ...), 2 usage error.
"""
from __future__ import annotations

import argparse
import sys

from entrypoint import add_debug_option, run_cli


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Export a SPOTER embedding checkpoint to ONNX (and optionally TFLite / int8 ONNX), "
                    "validated against PyTorch, with a model.json describing inputs, layout and normalisation.")
    parser.add_argument("-c", "--checkpoint", required=True, help="checkpoint (.pth) written by train.py")
    parser.add_argument("--output-folder", required=True, help="folder for model.onnx, model.json, ...")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 to 22 (default 17)")
    parser.add_argument("--tflite", action="store_true",
                        help="also write model.tflite (static shape, via onnx2tf; needs conversion_requirements.txt)")
    parser.add_argument("--frames", type=_positive_int, default=None,
                        help="frame count of the static TFLite model (default 100); the ONNX model stays dynamic")
    parser.add_argument("--fp16", action="store_true", help="with --tflite: also write model_fp16.tflite")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="also write model_int8.onnx (dynamic quantisation) and report its embedding drift")
    parser.add_argument("--validation-set", default=None,
                        help="SPOTER CSV or landmark folder for the --quantize report (default: a synthetic set)")
    add_debug_option(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from export.pipeline import convert
    result = convert(args.checkpoint, args.output_folder, opset=args.opset, tflite=args.tflite, frames=args.frames,
                     fp16=args.fp16, quantize=args.quantize, validation_set=args.validation_set,
                     report=lambda text: print(text, flush=True))
    written = [result.onnx_path, result.int8_path]
    if result.tflite is not None:
        written += [result.tflite.path, result.tflite.fp16_path]
    written.append(result.model_json)
    print("wrote " + ", ".join(str(p) for p in written if p is not None))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
