"""Evaluation speed: embedding, kNN protocols and silhouette for a WLASL100-shaped split.

2,000 gallery and 500 query clips of 30-120 frames over 100 glosses (synthetic signs from
:mod:`datasets.synthetic`, 13 signers), embedded by the default-size model (untrained:
weights do not change the cost) exactly as ``evaluate.py`` does, then:

* ``knn``: every ``evaluate.py`` protocol on the 500 x 2,000 distances (distinct-gloss
  top-1/top-5, class centroids, MAP@R, per-gloss table) plus the cross-signer protocol;
* ``gallery_query``: the inference path, :meth:`evaluation.gallery.Gallery.query` top-5;
* ``silhouette``: on the gallery and on the queries.

Speed is judged against yardsticks measured in the same run, never against figures from
another day: ``reference_batch_1`` embeds the queries one clip at a time (the original
code's way) for a same-conditions ratio, and the embedding's real-frame GFLOP/s is given
as a fraction of the machine's forward GEMM limit at the model's own shapes
(``bench/gemm_limit.py``), measured just before and after. ``cpu_seconds`` gives the work
itself on a busy machine.

Usage: ``python bench/bench_evaluation.py [--gallery 2000] [--queries 500] [--batch-size 128]``; prints JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import Timer, machine, peak_rss_mb, print_json  # noqa: E402
from datasets import layout  # noqa: E402
from datasets.sequences import SequenceSet  # noqa: E402

SEED = 0


def wlasl_shaped(gallery: int, queries: int, classes: int = 100) -> tuple[SequenceSet, SequenceSet]:
    """Synthetic signs, 30-120 frames, split at random into gallery and queries."""
    from datasets.synthetic import generate_signs
    signers = int(np.ceil((gallery + queries) / (classes * 2)))
    samples = generate_signs(classes, signers, 2, seed=SEED, min_frames=30, max_frames=120)
    order = np.random.default_rng(SEED).permutation(len(samples))
    names = sorted({s.gloss for s in samples})

    def subset(rows) -> SequenceSet:
        chosen = [samples[i] for i in rows]
        return SequenceSet.from_sequences([layout.raw_to_spoter(s.raw) for s in chosen],
                                          [names.index(s.gloss) for s in chosen], names,
                                          [s.video_id for s in chosen], [s.signer_id for s in chosen])
    return subset(order[:gallery]), subset(order[gallery:gallery + queries])


@contextmanager
def phase(wall: dict, cpu: dict, name: str):
    """Wall and process CPU seconds of a block: on a shared machine CPU time shows the work itself."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    yield
    wall[name], cpu[name] = time.perf_counter() - start_wall, time.process_time() - start_cpu


def main(argv=None) -> int:
    """Set-up, the timed phases in order, one JSON document.

    Kept as one function (~75 lines): the phases share one pair of wall/CPU dicts and read
    top to bottom in the order they run; split up, the order would no longer be visible.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the one-clip-at-a-time reference")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from evaluation.gallery import Gallery
    from evaluation.inference import Embedder
    from evaluation.knn import silhouette
    from evaluation.report import EmbeddedSet, evaluate_embeddings
    from bench.gemm_limit import gemm_limit
    from models import count_flops_per_sample
    from models.spoter import SpoterConfig, build_model
    from training.config import TrainConfig

    with Timer() as data_timer:
        gallery_set, query_set = wlasl_shaped(args.gallery, args.queries)
    config = TrainConfig()
    torch.manual_seed(config.seed)
    model = build_model(SpoterConfig.from_dict(config.model_config(len(gallery_set.label_names))))
    embedder = Embedder(model.eval(), config.preprocessing(), config.distance, config.seed, name="untrained")
    embedder.embed(query_set.subset(np.arange(min(16, len(query_set)))), args.batch_size)  # warm-up

    # The yardstick, measured around the run it judges.
    limits = [gemm_limit(model.config, batch=args.batch_size)["forward_limit_gflop_per_s"]]
    results, cpu = {}, {}
    with phase(results, cpu, "embed_gallery"):
        g_emb = embedder.embed(gallery_set, args.batch_size)
    with phase(results, cpu, "embed_queries"):
        q_emb = embedder.embed(query_set, args.batch_size)
    gallery, queries = EmbeddedSet.from_sequences(g_emb, gallery_set), EmbeddedSet.from_sequences(q_emb, query_set)
    with phase(results, cpu, "knn_protocols"):
        report = evaluate_embeddings(gallery, queries, metric="euclidean")
    with phase(results, cpu, "gallery_query"):
        Gallery.from_sequences(g_emb, gallery_set).query(q_emb, k=5)
    with phase(results, cpu, "silhouette"):
        scores = {"gallery": silhouette(g_emb, gallery_set.labels), "queries": silhouette(q_emb, query_set.labels)}
    reference = {}
    if not args.skip_reference:
        wall_ref, cpu_ref = {}, {}
        with phase(wall_ref, cpu_ref, "queries"):
            embedder.embed(query_set, batch_size=1)
        reference = {"queries_seconds": round(wall_ref["queries"], 3),
                     "queries_cpu_seconds": round(cpu_ref["queries"], 3),
                     "embedding_speedup_same_run": round(wall_ref["queries"] / results["embed_queries"], 2)}

    limits.append(gemm_limit(model.config, batch=args.batch_size)["forward_limit_gflop_per_s"])
    limit = sum(limits) / len(limits)
    embed_gflop = 2 * sum(count_flops_per_sample(model.config, int(t))
                          for t in np.concatenate([gallery_set.lengths, query_set.lengths])) / 1e9
    frames = {"gallery": int(gallery_set.lengths.sum()), "queries": int(query_set.lengths.sum())}
    embed_seconds = results["embed_gallery"] + results["embed_queries"]
    total = embed_seconds + results["knn_protocols"] + results["silhouette"]
    print_json({
        "benchmark": "evaluation",
        "machine": {**machine(), "torch_threads": torch.get_num_threads()},
        "setup": {"gallery": len(gallery_set), "queries": len(query_set), "glosses": len(gallery_set.label_names),
                  "frames": frames, "frames_per_clip": [int(gallery_set.lengths.min()), int(gallery_set.lengths.max())],
                  "batch_size": args.batch_size,
                  "model": "default SpoterConfig (6+6 layers, d=108, ff 2048), untrained",
                  "data_generation_seconds": round(data_timer.seconds, 2)},
        "seconds": {k: round(v, 3) for k, v in results.items()} | {"total": round(total, 3)},
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "rates": {
            "embeddings_per_s": round((len(gallery_set) + len(query_set)) / embed_seconds, 1),
            "frames_per_s": round((frames["gallery"] + frames["queries"]) / embed_seconds, 1),
            "queries_per_s_protocols": round(len(query_set) / results["knn_protocols"], 1),
            "queries_per_s_gallery_query": round(len(query_set) / results["gallery_query"], 1),
        },
        "embedding_fraction_of_forward_limit": round(embed_gflop / limit / embed_seconds, 3),
        "gemm_forward_limit_gflop_per_s": limits,
        "reference_batch_1": reference,
        "untrained_figures": {"knn_top1": round(report.protocols["standard"].metrics["knn_top1"], 4),
                              "knn_top5": round(report.protocols["standard"].metrics["knn_top5"], 4),
                              "silhouette": {k: round(v, 4) for k, v in scores.items()}},
        "peak_rss_mb": peak_rss_mb(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
