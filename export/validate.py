"""Exported models must give PyTorch's numbers: compare them on a grid of shapes, with and without padding.

Two columns per case: the runtime against PyTorch on the same padded batch, and each
padded row against PyTorch on that clip alone (padding must not change an embedding;
this catches a mask that got lost or inverted in conversion).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from datasets import layout

log = logging.getLogger(__name__)

BATCHES = (1, 2, 3, 4)
FRAMES = (1, 37, 100, 300)
TOLERANCE = 1e-4
MISSING_HAND_RATE = 0.2  # share of frames whose hand is zeroed, like undetected hands

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (B,T,54,2) float32, (B,T) bool -> (B,D)


class ValidationError(ValueError):
    """An exported model disagrees with PyTorch beyond the tolerance."""


@dataclass
class CaseResult:
    batch: int
    frames: int
    padded: bool
    max_abs_diff: float  # runtime vs PyTorch, same input
    padded_vs_clip: float | None = None  # padded rows vs PyTorch on each clip alone


@dataclass
class ValidationTable:
    runtime: str
    tolerance: float
    rows: list[CaseResult] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        values = [r.max_abs_diff for r in self.rows] + [r.padded_vs_clip for r in self.rows
                                                         if r.padded_vs_clip is not None]
        return float(max(values)) if values else float("nan")

    @property
    def passed(self) -> bool:
        return bool(self.rows) and self.max_abs_diff <= self.tolerance

    def failures(self) -> list[CaseResult]:
        return [r for r in self.rows if not (r.max_abs_diff <= self.tolerance and
                                             (r.padded_vs_clip is None or r.padded_vs_clip <= self.tolerance))]

    def format(self) -> str:
        head = f"{'batch':>5} {'frames':>6} {'padding':>7} {'max|' + self.runtime + '-torch|':>22} " \
               f"{'max|padded-clip|':>17}  ok"
        lines = [head]
        for r in self.rows:
            ok = r.max_abs_diff <= self.tolerance and (r.padded_vs_clip is None or r.padded_vs_clip <= self.tolerance)
            clip = "-" if r.padded_vs_clip is None else f"{r.padded_vs_clip:.2e}"
            lines.append(f"{r.batch:>5} {r.frames:>6} {'yes' if r.padded else 'no':>7} {r.max_abs_diff:>22.2e} "
                         f"{clip:>17}  {'yes' if ok else 'NO'}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{self.runtime}: {verdict}, max abs diff {self.max_abs_diff:.2e} (tolerance {self.tolerance:g})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "tolerance": self.tolerance, "passed": self.passed,
                "max_abs_diff": self.max_abs_diff, "cases": [asdict(r) for r in self.rows]}

    def raise_on_failure(self, what) -> None:
        if not self.passed:
            worst = max(self.failures() or self.rows,
                        key=lambda r: max(r.max_abs_diff, r.padded_vs_clip or 0.0), default=None)
            where = "" if worst is None else (f" (worst: batch {worst.batch}, frames {worst.frames}, "
                                              f"{'padded' if worst.padded else 'unpadded'})")
            raise ValidationError(f"{what}: {self.runtime} output differs from PyTorch by "
                                  f"{self.max_abs_diff:.3g} > {self.tolerance:g}{where}")


def random_batch(rng: np.random.Generator, batch: int, frames: int, padded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Normalised-looking clips ``(B, T, 54, 2)`` in [-0.5, 0.5) with hands missing at random, and a mask.

    With ``padded``, row 0 keeps every frame and the others (all rows when B=1) get a
    random valid length shorter than T; padded frames hold noise, which must not matter.
    """
    landmarks = rng.uniform(-0.5, 0.5, (batch, frames, layout.NUM_POINTS, layout.NUM_COORDS)).astype(np.float32)
    for hand in layout.HAND_SLICES:
        gone = rng.random((batch, frames)) < MISSING_HAND_RATE
        landmarks[:, :, hand][gone] = 0.0
    lengths = np.full(batch, frames)
    if padded:
        first = 1 if batch > 1 else 0
        lengths[first:] = rng.integers(1, frames, size=batch - first)  # 1 .. T-1
    mask = np.arange(frames)[None, :] >= lengths[:, None]
    return landmarks, mask


def torch_runner(model: torch.nn.Module) -> Runner:
    def run(landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(landmarks), torch.from_numpy(mask)).numpy()
    return run


def compare(model: torch.nn.Module, runner: Runner, runtime: str, shapes, tolerance: float = TOLERANCE,
            seed: int = 0) -> ValidationTable:
    """Run ``runner`` and PyTorch on every ``(batch, frames, padded)`` case; build the table."""
    reference = torch_runner(model.eval())
    rng = np.random.default_rng(seed)
    table = ValidationTable(runtime=runtime, tolerance=tolerance)
    for batch, frames, padded in shapes:
        landmarks, mask = random_batch(rng, batch, frames, padded)
        try:
            got = runner(landmarks, mask)
        except Exception as error:  # runtimes raise their own types; report as a failed validation
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValidationError(f"{runtime} failed on batch {batch}, frames {frames}: {text[:300]}") from error
        expected = reference(landmarks, mask)
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        clip_diff = None
        if padded:
            clip_diff = 0.0
            for row in np.flatnonzero(mask.any(1)):  # each padded row against its clip alone
                length = int((~mask[row]).sum())
                alone = reference(landmarks[row: row + 1, :length], mask[row: row + 1, :length])
                clip_diff = max(clip_diff, float(np.abs(got[row] - alone[0]).max()))
        table.rows.append(CaseResult(batch, frames, padded, diff, clip_diff))
    return table


def grid(batches=BATCHES, frames=FRAMES) -> list[tuple[int, int, bool]]:
    """Every batch × frames case, unpadded and padded (a 1-frame clip cannot be padded)."""
    return [(b, t, p) for t in frames for b in batches for p in (False, True) if not (p and t < 2)]


def frame_limit(model: torch.nn.Module) -> int | None:
    """Longest clip the model accepts: its learned positional table (None = no limit)."""
    config = getattr(model, "config", None)
    if config is not None and config.positional_encoding == "learned":
        return int(config.max_frames)
    return None


def frames_for(model: torch.nn.Module, frames=FRAMES) -> tuple[list[int], list[int]]:
    """``frames`` the model can take, with its limit standing in for longer ones; and those dropped."""
    limit = frame_limit(model)
    if limit is None:
        return sorted(set(frames)), []
    kept = {t for t in frames if t <= limit}
    dropped = sorted(t for t in frames if t > limit)
    if dropped:
        kept.add(limit)  # still test the longest clip it accepts
    return sorted(kept), dropped


def onnx_session(onnx_model, threads: int | None = None, optimization: str = "all"):
    """An onnxruntime CPU session from a path or serialized bytes."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors come back as exceptions and are reported by us
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    if threads:
        options.intra_op_num_threads = threads
    source = str(onnx_model) if not isinstance(onnx_model, (bytes, bytearray)) else bytes(onnx_model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_runner(onnx_model, threads: int | None = None) -> Runner:
    from export.graph import INPUT_NAMES
    session = onnx_session(onnx_model, threads)

    def run(landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(None, {INPUT_NAMES[0]: landmarks, INPUT_NAMES[1]: mask})[0]
    return run


def validate_onnx(model: torch.nn.Module, onnx_model, batches=BATCHES, frames=FRAMES,
                  tolerance: float = TOLERANCE, runtime: str = "onnxruntime") -> ValidationTable:
    """onnxruntime vs PyTorch on ``batches`` × ``frames``, with and without padding.

    Frame counts beyond the model's learned positional table (training's ``max_frames``)
    are replaced by that limit: the model rejects longer clips, in PyTorch as in ONNX.
    """
    frames, dropped = frames_for(model, frames)
    if dropped:
        log.info("model accepts at most %d frames: validating %s instead of %s", frame_limit(model),
                 frame_limit(model), dropped)
    table = compare(model, onnx_runner(onnx_model), runtime, grid(batches, frames), tolerance)
    log.info("%s validation: max abs diff %.2e over %d cases", runtime, table.max_abs_diff, len(table.rows))
    return table


__all__ = ["ValidationError", "ValidationTable", "CaseResult", "validate_onnx", "compare", "grid", "frames_for",
           "random_batch", "onnx_session", "onnx_runner", "torch_runner", "TOLERANCE"]
