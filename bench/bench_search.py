"""Gallery search at dictionary scale: exact against faiss HNSW and IVF-PQ, measured in one run.

Galleries of 10⁴, 10⁵ and 10⁶ unit-length 64-d embeddings shaped like a real sign gallery
(glosses × signers × takes: a gloss centre, a per-signer offset shared by that signer's signs,
per-take noise; about 20 clips per gloss), queries drawn the same way (new takes). For each
index: build time, index size, single-query latency p50/p99 on one thread (one query at a
time, as a dictionary look-up is) for the 5 nearest rows and for a whole look-up (the 5
nearest distinct glosses, ``Gallery.query``), batch throughput (all cores), recall@1/@5 of the
returned rows against exact search on the same queries, and the look-up's top-1 gloss accuracy.

With ``--hnsw-ef`` each HNSW index is also measured at those efSearch floors (latency and
recall of the 5 nearest rows, the same built graph). The 1-minute load average is recorded
beside every timing (the machine may be shared).

Usage: ``python bench/bench_search.py [--sizes 10000 100000 1000000] [--queries 300]
[--hnsw-ef 16 32 64] [--output FILE]``; prints JSON. The 10⁶ HNSW build
takes minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/...` runs from anywhere

from bench.common import current_rss_mb, machine, print_json  # noqa: E402
from evaluation import search  # noqa: E402
from evaluation.gallery import Gallery  # noqa: E402
from evaluation.search import AUTO_EXACT_BELOW, ExactIndex, FaissIndex, recall_at  # noqa: E402

DIM = 64
CLIPS_PER_GLOSS = 20
SIGNERS = 200


def sign_like(n: int, seed: int, glosses: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit embeddings and their gloss labels: gloss centre + signer offset + take noise."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1).normal(size=(glosses, DIM)).astype(np.float32)
    signers = np.random.default_rng(2).normal(scale=0.5, size=(SIGNERS, DIM)).astype(np.float32)
    out, labels = np.empty((n, DIM), np.float32), rng.integers(0, glosses, n)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = (centres[labels[start:start + m]] + signers[rng.integers(0, SIGNERS, m)]
             + rng.normal(scale=0.6, size=(m, DIM)).astype(np.float32))
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, labels


def single_query_latency(search, queries: np.ndarray) -> dict:
    """p50/p99 milliseconds of ``search(one_query)`` on one thread."""
    import faiss
    threads = (faiss.omp_get_max_threads(), torch.get_num_threads())
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q[None])
        times.append((time.perf_counter() - started) * 1000)
    faiss.omp_set_num_threads(threads[0])
    torch.set_num_threads(threads[1])
    times = np.asarray(times[5:])  # the first few warm caches up
    return {"p50_ms": round(float(np.percentile(times, 50)), 4), "p99_ms": round(float(np.percentile(times, 99)), 4),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def effort_sweep(index: FaissIndex, probe: np.ndarray, queries: np.ndarray, exact_rows, efforts) -> list[dict]:
    """Latency and recall of the 5 nearest rows at each efSearch floor, on the same built graph."""
    default, rows = index.search_effort, []
    for effort in efforts:
        index.search_effort = effort
        row = {"ef_search": effort, **single_query_latency(lambda q: index.search(q, 5), probe)}
        if exact_rows is not None:
            row.update({k: round(v, 4) for k, v in recall_at(index.search(queries, 5)[1], exact_rows).items()})
        rows.append(row)
        print(json.dumps({"ef_sweep_over": len(index), **row}), file=sys.stderr, flush=True)
    index.search_effort = default
    return rows


def index_bytes(index) -> int:
    if isinstance(index, ExactIndex):
        return int(index.embeddings.numel() * 4)
    import faiss
    return int(faiss.serialize_index(index.index).nbytes)


def main() -> None:
    """Every size and index kind in one loop, then one JSON document (one screen, kept whole)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--kinds", nargs="+", default=["exact", "hnsw", "ivfpq"])
    parser.add_argument("--hnsw-ef", type=int, nargs="*", default=[],
                        help="also measure each HNSW index at these efSearch floors")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        glosses = max(size // CLIPS_PER_GLOSS, 2)
        gallery, labels = sign_like(size, seed=10, glosses=glosses)
        queries, query_labels = sign_like(args.queries, seed=11, glosses=glosses)
        dictionary = Gallery(gallery, labels, [f"g{i}" for i in range(glosses)], metric="cosine")
        exact_rows = None
        for kind in args.kinds:
            rss_before = current_rss_mb()
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            index = ExactIndex(gallery, "cosine", block=256) if kind == "exact" else FaissIndex.build(
                gallery, kind, "cosine", progress=sys.stderr.isatty())
            build = time.perf_counter() - started
            row = {"size": size, "glosses": glosses, "dim": DIM, "index": kind, "build_seconds": round(build, 2),
                   "build_load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                   "index_mb": round(index_bytes(index) / 2**20, 1),
                   "rss_growth_mb": round(current_rss_mb() - rss_before, 1)}
            if kind == "hnsw":
                row.update({"neighbours": search.HNSW_NEIGHBOURS,
                            "ef_construction": search.HNSW_BUILD_EFFORT, "ef_search_floor": index.search_effort})
            probe = queries[: min(len(queries), 205)]
            row.update(single_query_latency(lambda q: index.search(q, 5), probe))
            # a dictionary look-up: the 5 nearest distinct glosses (the gallery widens its search as needed)
            dictionary.set_index(index)
            looked_up = single_query_latency(lambda q: dictionary.query(q, k=5), probe)
            row.update({f"lookup_{key}": value for key, value in looked_up.items()})
            top = dictionary.query(queries, k=5).glosses
            row["lookup_top1"] = round(float((top[:, 0] == query_labels).mean()), 4)
            started = time.perf_counter()
            _, rows = index.search(queries, 5)
            row["batch_queries_per_second"] = round(len(queries) / (time.perf_counter() - started), 1)
            if kind == "exact":
                exact_rows = rows
            if exact_rows is not None:
                row.update({k: round(v, 4) for k, v in recall_at(rows, exact_rows).items()})
            if kind == "hnsw" and args.hnsw_ef:
                row["ef_sweep"] = effort_sweep(index, probe, queries, exact_rows, args.hnsw_ef)
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            del index
    by_size = {}
    for row in results:
        by_size.setdefault(row["size"], {})[row["index"]] = row
    ratios = {str(size): {f"{kind}_p50_speedup_over_exact": round(rows["exact"]["p50_ms"] / rows[kind]["p50_ms"], 1)
                          for kind in rows if kind != "exact" and "exact" in rows}
              for size, rows in by_size.items()}
    document = {"benchmark": "gallery search: exact vs faiss HNSW / IVF-PQ (cosine, 64-d)",
                "machine": machine(), "auto_exact_below": AUTO_EXACT_BELOW, "results": results,
                "single_query_speedup_over_exact_in_this_run": ratios}
    print_json(document)
    if args.output:
        Path(args.output).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
