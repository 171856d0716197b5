"""Benchmark: single-clip latency of the exported model, PyTorch eager vs onnxruntime fp32/int8 vs TFLite.

Prints one JSON document. Run from the repository root::

    python bench/bench_export.py [--runs 50] [--rounds 3] [--threads 1 2] [--frames 100 300] [--no-tflite]
                                 [--checkpoint CKPT] [--validation-set PATH]

The model is the default-size SPOTER embedding (d 108, 9 heads, 6+6 layers, ff 2048),
with seeded random weights (made distinct per layer, as after training, so converters
cannot merge equal tensors) unless ``--checkpoint`` is given. One clip ``(1, T, 54, 2)``
per call; each case is warmed up, then the median (and p10/p90/min) of ``--runs`` calls
is taken, in each of ``--rounds`` rounds; the best round is reported. The ONNX model
keeps batch and frames dynamic (the one ``convert.py`` writes); TFLite models are
static, one per T.

``onnxruntime_fp32`` is convert.py's streamlined graph (:mod:`export.graph`);
``onnxruntime_fp32_module_graph`` exports the model's own forward, for comparison.
Also: an onnxruntime session-option sweep (graph optimisation level, thread spinning)
and the int8 embedding drift / kNN top-1 change on a validation set. The 1-minute load
average is recorded before and after, since other processes inflate timings.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, print_json  # noqa: E402
from datasets import layout  # noqa: E402
from export.onnx_export import INPUT_NAMES, export_model_onnx  # noqa: E402
from export.quantize import drift_report, embed_onnx, quantize_int8, validation_clips  # noqa: E402
from export.validate import validate_onnx  # noqa: E402
from models.spoter import SpoterConfig, build_model  # noqa: E402

WARMUP = 10
NORMALIZATION = {"body": "centered", "hands": True, "resample_frames": 0, "max_frames": 256}


def latency(fn, runs: int, warmup: int = WARMUP) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times_ms = np.asarray(times) * 1e3
    return {"median_ms": round(float(np.median(times_ms)), 3), "p10_ms": round(float(np.percentile(times_ms, 10)), 3),
            "p90_ms": round(float(np.percentile(times_ms, 90)), 3), "min_ms": round(float(times_ms.min()), 3)}


def node_count(path: Path) -> int:
    import onnx
    return len(onnx.load(str(path)).graph.node)


def clip(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    landmarks = rng.uniform(-0.5, 0.5, (1, frames, layout.NUM_POINTS, layout.NUM_COORDS)).astype(np.float32)
    return landmarks, np.zeros((1, frames), bool)


def ort_session(path: Path, threads: int, level: str = "all", spinning: bool = True):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_call(session, frames: int):
    landmarks, mask = clip(frames)
    feeds = {INPUT_NAMES[0]: landmarks, INPUT_NAMES[1]: mask}
    return lambda: session.run(None, feeds)


def torch_call(model, frames: int, threads: int):
    landmarks, mask = (torch.from_numpy(a) for a in clip(frames))

    def run():
        with torch.inference_mode():
            return model(landmarks, mask)
    return run


def tflite_call(path: Path, frames: int, threads: int):
    from export.tflite_export import tflite_runner
    runner, _, _ = tflite_runner(path, threads)
    landmarks, mask = clip(frames)
    return lambda: runner(landmarks, mask)


def benchmark_model(checkpoint: str | None):
    """The model to time: a checkpoint's, or the default size with distinct random weights."""
    if checkpoint:
        from export.source import load_source
        source = load_source(checkpoint)
        return source.model, source.normalization, f"checkpoint {Path(checkpoint).name}"
    torch.manual_seed(0)
    model = build_model(SpoterConfig()).eval()
    with torch.no_grad():
        # A fresh nn.Transformer's layers are deep copies of one layer, and norms/biases
        # are 1/0: converters then store shared tensors once (TFLite: 4 MB instead of
        # 24 MB), which flatters latency. Make every tensor distinct, as after training.
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model, NORMALIZATION, "random weights (seed 0), every tensor distinct"


def export_all(model, work: Path, frames_list: list[int], with_tflite: bool):
    """Every exported form, timed: ONNX (streamlined and module graph), int8 (two ways), TFLite per length."""
    start = time.perf_counter()
    fp32 = export_model_onnx(model, work / "model.onnx")
    export = {"onnx_seconds": round(time.perf_counter() - start, 1),
              "onnx_mb": round(fp32.stat().st_size / 2**20, 2), "onnx_nodes": node_count(fp32)}
    start = time.perf_counter()
    fp32_module = export_model_onnx(model, work / "model_module.onnx", streamlined=False)
    export["onnx_module_graph_seconds"] = round(time.perf_counter() - start, 1)
    export["onnx_module_graph_nodes"] = node_count(fp32_module)
    export["onnx_max_abs_diff"] = validate_onnx(model, fp32, batches=(1, 2), frames=(100, 300)).max_abs_diff
    start = time.perf_counter()
    int8 = quantize_int8(fp32, work / "model_int8.onnx")
    int8_pc = quantize_int8(fp32, work / "model_int8_per_channel.onnx", per_channel=True)
    export["int8_seconds"] = round(time.perf_counter() - start, 1)
    export["int8_mb"] = round(int8.stat().st_size / 2**20, 2)
    tflite = {}
    if with_tflite:
        from export.tflite_export import export_tflite
        for frames in frames_list:
            start = time.perf_counter()
            result = export_tflite(model, work / f"tflite_T{frames}", frames=frames, report=lambda _: None)
            target = work / f"model_T{frames}.tflite"
            result.path.rename(target)
            tflite[frames] = target
            export[f"tflite_T{frames}_seconds"] = round(time.perf_counter() - start, 1)
            export[f"tflite_T{frames}_max_abs_diff"] = result.validation.max_abs_diff
        export["tflite_mb"] = round(next(iter(tflite.values())).stat().st_size / 2**20, 2) if tflite else None
    paths = {"fp32": fp32, "fp32_module_graph": fp32_module, "int8": int8, "int8_per_channel": int8_pc}
    return export, paths, tflite


def latency_rows(model, paths: dict, tflite: dict, frames_list: list[int], threads_list: list[int],
                 runs: int, rounds: int) -> list[dict]:
    """Median latency of every runtime at every (frames, threads), the best of ``rounds`` rounds."""
    cases = {}
    for frames in frames_list:
        for threads in threads_list:
            cases[frames, threads, "torch_eager"] = torch_call(model, frames, threads)
            cases[frames, threads, "onnxruntime_fp32"] = ort_call(ort_session(paths["fp32"], threads), frames)
            cases[frames, threads, "onnxruntime_fp32_module_graph"] = ort_call(
                ort_session(paths["fp32_module_graph"], threads), frames)
            cases[frames, threads, "onnxruntime_int8"] = ort_call(ort_session(paths["int8"], threads), frames)
            if frames in tflite:
                cases[frames, threads, "tflite_fp32"] = tflite_call(tflite[frames], frames, threads)
    # Each case runs as one block (runtimes' idle spinning threads would slow each other
    # if interleaved call by call); whole rounds repeat, and the best round counts, so a
    # burst of load from another process spoils one round, not the result.
    measured: dict = {key: [] for key in cases}
    for _ in range(rounds):
        for (frames, threads, name), fn in cases.items():
            torch.set_num_threads(threads)
            measured[frames, threads, name].append(latency(fn, runs))
    rows = []
    for (frames, threads, name), results in measured.items():
        best = min(results, key=lambda r: r["median_ms"])
        rows.append({"runtime": name, "frames": frames, "threads": threads, **best,
                     "round_medians_ms": [r["median_ms"] for r in results]})
    return rows


def options_sweep(paths: dict, frames: int, threads: int, runs: int) -> list[dict]:
    """onnxruntime session options (optimisation level x thread spinning) for every ONNX model."""
    sweep = []
    for label, path in paths.items():
        for level in ("basic", "extended", "all"):
            for spinning in (True, False):
                session = ort_session(path, threads, level, spinning)
                sweep.append({"model": label, "optimization": level, "spinning": spinning,
                              "frames": frames, "threads": threads,
                              **latency(ort_call(session, frames), runs)})
    return sweep


def int8_drift(paths: dict, normalization: dict, validation_set: str | None, threads: int) -> dict:
    """How far each int8 model's embeddings move from fp32's, and whether the neighbours change."""
    data = validation_clips(normalization, validation_set)
    reference = embed_onnx(ort_session(paths["fp32"], threads), data.clips)
    drift = {}
    for label in ("int8", "int8_per_channel"):
        emb = embed_onnx(ort_session(paths[label], threads), data.clips)
        drift[label] = {**drift_report(reference, emb, data.labels, data.video_ids), "validation_set": data.source}
    return drift


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="timed calls per case and round (after warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="repeat every case; the best round's median counts")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--no-tflite", action="store_true", help="skip TFLite (conversion takes minutes)")
    parser.add_argument("--checkpoint", help="use this checkpoint's model instead of random weights")
    parser.add_argument("--validation-set", help="SPOTER CSV or landmark folder for the int8 drift report")
    args = parser.parse_args(argv)
    if args.runs < 50 or args.rounds < 1:
        parser.error("--runs must be at least 50 and --rounds at least 1")

    doc: dict = {"benchmark": "export_latency", "machine": machine(), "load_average_start": os.getloadavg()[0],
                 "runs": args.runs, "warmup": WARMUP, "torch_version": torch.__version__}
    model, normalization, doc["model_source"] = benchmark_model(args.checkpoint)
    config = model.config
    limit = config.max_frames if config.positional_encoding == "learned" else None
    if limit is not None and max(args.frames) > limit:
        parser.error(f"this model accepts at most {limit} frames; pass --frames up to {limit}")
    import onnxruntime
    doc["onnxruntime_version"] = onnxruntime.__version__
    doc["model"] = {"hidden_dim": config.hidden_dim, "num_heads": config.num_heads,
                    "num_encoder_layers": config.num_encoder_layers, "num_decoder_layers": config.num_decoder_layers,
                    "dim_feedforward": config.dim_feedforward, "vector_length": config.vector_length,
                    "parameters": sum(p.numel() for p in model.parameters())}

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        doc["export"], paths, tflite = export_all(model, Path(tmp), args.frames, not args.no_tflite)
        rows = latency_rows(model, paths, tflite, args.frames, args.threads, args.runs, args.rounds)
        doc["latency"] = rows
        # Session options at the reference point: one clip of the first length, the most threads.
        sweep = options_sweep(paths, args.frames[0], max(args.threads), args.runs)
        doc["onnxruntime_options"] = sweep
        doc["int8_drift"] = int8_drift(paths, normalization, args.validation_set, max(args.threads))

    summary = {}
    for row in rows:
        summary.setdefault(f"T{row['frames']}_threads{row['threads']}", {})[row["runtime"]] = row["median_ms"]
    doc["median_ms"] = summary
    best = min((r for r in sweep if r["model"] == "fp32"), key=lambda r: r["median_ms"])
    doc["best_onnxruntime_fp32_options"] = {k: best[k] for k in ("optimization", "spinning", "median_ms")}
    doc["load_average_end"] = os.getloadavg()[0]
    print_json(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
