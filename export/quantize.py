"""Dynamic int8 quantisation of the ONNX model, and what it costs in embedding quality.

Dynamic quantisation stores MatMul/Gemm weights as int8 and quantises activations on
the fly, so it needs no calibration data and keeps batch and frames dynamic. The
report compares int8 with fp32 embeddings of a validation set: element drift,
cosine similarity, and leave-one-out kNN top-1 (the number recognition depends on).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets import layout
from datasets.atomic import atomic_path
from datasets.errors import DataError
from datasets.sequences import SequenceSet
from export.onnx_export import INPUT_NAMES

log = logging.getLogger(__name__)

INT8_FILE = "model_int8.onnx"
EMBED_BATCH = 32
MAX_TOP1_CHANGE_POINTS = 1.0  # above this the CLI warns
SYNTHETIC_SET = {"num_classes": 30, "num_signers": 4, "samples_per_class_per_signer": 2, "seed": 0}


def quantize_int8(onnx_path: str | os.PathLike, out_path: str | os.PathLike, per_channel: bool = False) -> Path:
    """Weights of MatMul/Gemm to int8 (signed, dynamic activations); written atomically.

    Weights use 7 of the 8 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only,
    e.g. many AMD EPYC and older Intel parts) onnxruntime's u8×s8 kernels sum pairs of
    products in saturating 16-bit lanes, and full-range weights overflow them — the
    int8 model then ranks glosses differently from the float one on those machines only
    (measured: another top-1 on an AVX2 machine, while WebAssembly agreed with float).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    out_path = Path(out_path)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # the quantizer logs one INFO line per node on the root logger
    try:
        with atomic_path(out_path) as tmp:
            quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8, per_channel=per_channel,
                             reduce_range=True)
    finally:
        root.setLevel(level)
    return out_path


@dataclass
class ValidationClips:
    """Normalised clips ready for the model, their labels and the group (video) each comes from."""

    clips: list[np.ndarray]
    labels: np.ndarray
    video_ids: np.ndarray
    source: str


def synthetic_sequences(**overrides) -> SequenceSet:
    """A small generated set (several signers per sign) when no validation set is given."""
    from datasets.synthetic import generate_signs
    params = {**SYNTHETIC_SET, **overrides}
    samples = generate_signs(**params)
    names = {s.label: s.gloss for s in samples}
    return SequenceSet.from_sequences(
        [layout.raw_to_spoter(s.raw) for s in samples], [s.label for s in samples],
        [names[i] for i in range(len(names))], video_ids=[s.video_id for s in samples],
        signer_ids=[s.signer_id for s in samples])


def validation_clips(normalization: dict, path: str | os.PathLike | None = None) -> ValidationClips:
    """Load ``path`` (SPOTER CSV or landmark folder) or make a synthetic set; prepare clips as the
    checkpoint's ``normalization`` settings say (the same steps as training and prediction)."""
    from augmentations.preprocess import prepare
    if path is None:
        sequences = synthetic_sequences()
        source = "synthetic ({num_classes} signs x {num_signers} signers x {samples_per_class_per_signer})".format(
            **SYNTHETIC_SET)
    else:
        from datasets.loading import load_sequence_set
        sequences = load_sequence_set(path)
        source = str(path)
    if len(sequences) < 2:
        raise DataError(f"{source}: validation set needs at least 2 samples, has {len(sequences)}")
    clips = [prepare(sequences.sequence(i), normalization) for i in range(len(sequences))]
    video_ids = sequences.video_ids
    if not all(video_ids):  # unnamed samples: each is its own group
        video_ids = np.asarray([f"#{i}" for i in range(len(sequences))])
    return ValidationClips(clips, sequences.labels, video_ids, source)


def embed_onnx(session, clips: list[np.ndarray], batch_size: int = EMBED_BATCH) -> np.ndarray:
    """Embeddings ``(N, D)``; clips of similar length share a padded batch."""
    order = np.argsort([len(c) for c in clips], kind="stable")
    out = None
    for start in range(0, len(order), batch_size):
        chunk = order[start: start + batch_size]
        lengths = np.asarray([len(clips[i]) for i in chunk])
        frames = int(lengths.max())
        batch = np.zeros((len(chunk), frames, layout.NUM_POINTS, layout.NUM_COORDS), np.float32)
        for row, i in enumerate(chunk):
            batch[row, : lengths[row]] = clips[i]
        mask = np.arange(frames)[None, :] >= lengths[:, None]  # (B, T) True = padded
        emb = session.run(None, {INPUT_NAMES[0]: batch, INPUT_NAMES[1]: mask})[0]
        if out is None:
            out = np.empty((len(clips), emb.shape[1]), np.float32)
        out[chunk] = emb
    return out


def drift_report(reference: np.ndarray, candidate: np.ndarray, labels, video_ids, metric: str = "euclidean") -> dict:
    """Element drift, cosine similarity and leave-one-out kNN top-1 of ``candidate`` vs ``reference``.

    top-1 is evaluate.py's same-set ``standard`` kNN top-1 (:mod:`evaluation.ranking`): a
    query leaves its own video out and is counted when its gloss has another video.
    """
    from evaluation.knn import exclusion_mask, pairwise_distances
    from evaluation.ranking import rank_by_nearest
    diff = np.abs(candidate - reference)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = (reference * candidate).sum(1) / np.maximum(norms, 1e-12)
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1
    excluded = exclusion_mask(video_ids, video_ids)  # a query never finds itself
    top1, predictions = {}, {}
    for name, emb in (("fp32", reference), ("int8", candidate)):
        ranking = rank_by_nearest(pairwise_distances(emb, emb, metric), labels, labels, num_classes, excluded, k=1)
        top1[name] = ranking.accuracy(ks=(1,))["knn_top1"]
        predictions[name] = ranking.predictions[:, 0]
    return {
        "samples": len(labels), "classes": len(np.unique(labels)), "metric": metric,
        "answerable_queries": int(ranking.eligible.sum()),
        "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean()),
        "top1_fp32": top1["fp32"], "top1_int8": top1["int8"],
        "top1_change_points": round(100 * (top1["int8"] - top1["fp32"]), 4),
        "predictions_changed": float((predictions["fp32"] != predictions["int8"]).mean()),
    }


def int8_report(fp32_onnx, int8_onnx, data: ValidationClips, metric: str = "euclidean") -> dict:
    """Embed ``data`` with both models and compare (see :func:`drift_report`)."""
    from export.validate import onnx_session
    reference = embed_onnx(onnx_session(fp32_onnx), data.clips)
    candidate = embed_onnx(onnx_session(int8_onnx), data.clips)
    report = drift_report(reference, candidate, data.labels, data.video_ids, metric)
    report["validation_set"] = data.source
    return report


def format_report(report: dict) -> str:
    return (f"int8 vs fp32 on {report['samples']} clips / {report['classes']} signs ({report['validation_set']}): "
            f"max|diff| {report['max_abs_diff']:.3g}, mean|diff| {report['mean_abs_diff']:.3g}, "
            f"cosine min {report['cosine_min']:.5f} mean {report['cosine_mean']:.5f}; "
            f"kNN top-1 {100 * report['top1_fp32']:.2f}% -> {100 * report['top1_int8']:.2f}% "
            f"({report['top1_change_points']:+.2f} points, {100 * report['predictions_changed']:.1f}% of "
            f"predictions changed)")
