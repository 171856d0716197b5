"""PyTorch -> ONNX with the dynamo exporter, batch and frame count left dynamic.

The legacy TorchScript exporter bakes the example's frame count into the attention
reshapes, so only the dynamo route gives a model that runs for any clip length. The
example input has batch >= 2 and frames >= 2: a size-1 example dimension gets
specialised to a constant.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import onnx
import torch

from datasets import layout
from datasets.atomic import atomic_write
from datasets.errors import DataError, UsageError
from export.graph import INPUT_NAMES, OUTPUT_NAME  # noqa: F401 (re-export: the graph names its inputs)
from export.source import load_source, make_readable, prepare_output_folder

log = logging.getLogger(__name__)

MIN_OPSET = 17
MAX_OPSET = 22  # 23 exports attention as the Attention op, which onnxruntime 1.32 rejects with a key mask
ONNX_FILE = "model.onnx"
_EXAMPLE_BATCH, _EXAMPLE_FRAMES = 2, 16


def check_opset(opset: int) -> int:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"--opset {opset}: choose an opset from {MIN_OPSET} to {MAX_OPSET}")
    return opset


def example_inputs(batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Tracing inputs: ``(batch, frames, 54, 2)`` in the normalised range and a mask padding one row."""
    g = torch.Generator().manual_seed(seed)
    landmarks = torch.rand(batch, frames, layout.NUM_POINTS, layout.NUM_COORDS, generator=g) - 0.5
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    if batch > 1 and frames > 1:
        mask[-1, frames // 2:] = True
    return landmarks, mask


def to_onnx_proto(model: torch.nn.Module, opset: int = MIN_OPSET, frames: int | None = None,
                  batch: int | None = None, streamlined: bool = True) -> onnx.ModelProto:
    """Export ``model`` to an in-memory, self-contained ModelProto (checked by ``onnx.checker``).

    ``frames``/``batch`` None = dynamic; an int fixes that dimension (static exports for TFLite).
    ``streamlined`` exports :mod:`export.graph`'s leaner forward of the same parameters.
    """
    from export.graph import streamline
    check_opset(opset)
    model = streamline(model.eval()) if streamlined else model.eval()
    example = example_inputs(batch or _EXAMPLE_BATCH, frames or _EXAMPLE_FRAMES)
    dims = {}
    if batch is None:
        dims[0] = torch.export.Dim("batch")
    if frames is None:
        dims[1] = torch.export.Dim("frames")
    dynamic_shapes = (dims, dims) if dims else None
    # The exporter prints progress lines to stdout and logs notes such as its internal
    # opset conversion; keep them in the debug log (the result is checked below).
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), _quiet("torch.onnx", "onnxscript", "onnx_ir"), torch.no_grad():
            program = torch.onnx.export(model, example, None, dynamo=True, opset_version=opset,
                                        input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                                        dynamic_shapes=dynamic_shapes, external_data=False, verbose=False)
            proto = program.model_proto
    except Exception as error:  # the exporter raises many types; keep the first line
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"ONNX export failed: {text[:300]}") from error
    finally:
        log.debug("exporter output:\n%s", chatter.getvalue())
    _check_interface(proto, opset, frames, batch)
    onnx.checker.check_model(proto, full_check=True)
    return proto


@contextlib.contextmanager
def _quiet(*logger_names: str):
    """Silence libraries' loggers and warnings for a block, unless we are debugging."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)  # e.g. notes on how it renamed dynamic axes
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _check_interface(proto: onnx.ModelProto, opset: int, frames: int | None, batch: int | None) -> None:
    """Names, dtypes and dynamic dims are the contract with every consumer: verify, never assume."""
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != list(INPUT_NAMES) or outputs != [OUTPUT_NAME]:
        raise DataError(f"exported graph has inputs {inputs} / outputs {outputs}, "
                        f"expected {list(INPUT_NAMES)} / {[OUTPUT_NAME]}")
    default = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if default != [opset]:
        raise DataError(f"exported graph uses opset {default}, expected {opset}")
    for value, want in zip(proto.graph.input, (batch, frames)):
        dims = value.type.tensor_type.shape.dim
        got = [(d.dim_value if d.HasField("dim_value") else d.dim_param) for d in dims[:2]]
        for axis, (size, fixed) in enumerate(zip(got, (batch, frames))):
            if fixed is None and not isinstance(size, str):
                raise DataError(f"input {value.name!r} axis {axis} was specialised to {size}; it must stay dynamic")
    elem = onnx.TensorProto
    got_types = [i.type.tensor_type.elem_type for i in proto.graph.input]
    if got_types != [elem.FLOAT, elem.BOOL]:
        raise DataError(f"exported input types {got_types}, expected float32 landmarks and bool padding_mask")


def save_proto(proto: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write one self-contained .onnx file atomically."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        handle.write(proto.SerializeToString())
    return make_readable(path)


def export_model_onnx(model: torch.nn.Module, path: str | os.PathLike, opset: int = MIN_OPSET,
                      frames: int | None = None, batch: int | None = None, streamlined: bool = True) -> Path:
    """Export an in-memory model to ``path`` (not validated); dynamic batch/frames unless fixed."""
    return save_proto(to_onnx_proto(model, opset, frames=frames, batch=batch, streamlined=streamlined), path)


def export_validated(model: torch.nn.Module, opset: int = MIN_OPSET, **grid):
    """Dynamic export checked against ``model`` on the validation grid.

    Returns ``(proto, table, streamlined)``; ``grid`` (batches=, frames=) narrows the
    grid of :func:`export.validate.validate_onnx`. The streamlined graph is tried first;
    if it disagrees with PyTorch (say the model code changed in a way :mod:`export.graph`
    does not know), the model's own forward is exported instead, with a warning.
    """
    from export.graph import unsupported_reason
    from export.validate import ValidationError, validate_onnx
    model = model.eval()
    if unsupported_reason(model) is None:
        proto = to_onnx_proto(model, opset, streamlined=True)
        try:
            table = validate_onnx(model, proto.SerializeToString(), **grid)
        except ValidationError as error:
            table, reason = None, str(error)
        else:
            reason = f"max abs diff {table.max_abs_diff:.3g}"
        if table is not None and table.passed:
            return proto, table, True
        log.warning("streamlined graph does not match PyTorch (%s); exporting the model's own forward", reason)
    proto = to_onnx_proto(model, opset, streamlined=False)
    return proto, validate_onnx(model, proto.SerializeToString(), **grid), False


def export_onnx(checkpoint_path: str | os.PathLike, out_dir: str | os.PathLike, opset: int = MIN_OPSET,
                validate: bool = True) -> Path:
    """Checkpoint -> ``out_dir/model.onnx`` (dynamic batch and frames), validated against PyTorch.

    Raises :class:`export.validate.ValidationError` when onnxruntime and PyTorch disagree.
    """
    out_dir = prepare_output_folder(out_dir)
    source = load_source(checkpoint_path)
    path = out_dir / ONNX_FILE
    if not validate:
        return save_proto(to_onnx_proto(source.model, opset), path)
    proto, table, _ = export_validated(source.model, opset)
    table.raise_on_failure(path)  # before writing: a failed model never replaces a good one
    return save_proto(proto, path)
