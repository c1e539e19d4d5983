"""Exact search speed of ``mmzoo.retrieval.Index`` over 10k and 100k stored embeddings.

Prints, in one run, for each collection size: the p50/p99 latency of a single
query (top 10) and the queries/s of batches of 64 queries, on random unit
vectors (exact search costs the same whatever the values). Target (issue 14):
a single query over 100k embeddings in under 10 ms on this CPU.

Usage::

    python benchmarks/index_search.py [--dim 256] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from mmzoo.retrieval import Index


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{os.cpu_count()} cores; dim {args.dim}; exact cosine search, top 10")
    for size in (10_000, 100_000):
        index = Index()
        index.add(rng.normal(size=(size, args.dim)).astype("float32"), ids=[str(i) for i in range(size)])
        queries = rng.normal(size=(args.queries, args.dim)).astype("float32")
        index.search(queries[0], top_k=10)  # warm-up
        times = []
        for q in queries:
            start = time.perf_counter()
            index.search(q, top_k=10)
            times.append(time.perf_counter() - start)
        batch = queries[:64]
        start = time.perf_counter()
        for _ in range(5):
            index.search(batch, top_k=10)
        per_s = 5 * len(batch) / (time.perf_counter() - start)
        p50, p99 = np.percentile(times, [50, 99]) * 1e3
        print(f"{size:>7,} embeddings: one query p50 {p50:.2f} ms, p99 {p99:.2f} ms; batches of 64: "
              f"{per_s:,.0f} queries/s; under 10 ms: {'yes' if p50 < 10 else 'no'}")


if __name__ == "__main__":
    main()
