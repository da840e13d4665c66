"""What learning the ranking adds to a rebuild at XO Black's size, beside a plain fit.

A ``seed_demo`` world (200,000 users, 50,000 businesses, 5,000,000 interactions by
default; generated in memory, no database) is trained twice in child processes: the
reference is the plain ``Recommender.fit`` a rebuild did before rankings were learned;
the other is what a rebuild does now — ``learn_ranking`` (temporal holdout, evaluation
model, learned weights, baselines, guardrail) within ``TUNING_SECONDS``, then the fit
with the learned weights. Each prints wall time and peak RSS; medians of ``--runs``.

    python benchmarks/tuning_scale.py                 # 200k / 50k / 5M, 1 run
    python benchmarks/tuning_scale.py --smoke         # 2,000 / 500 / 20,000, for CI

Target (issue 7): the whole rebuild, tuning included, <= 120 s and <= 4 GiB on 2 cores
(reading the rows from PostgreSQL adds ~10 s at 5M: ``scale_recommend.py``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))


def _child(kind: str, size: tuple, budget: float, queue) -> None:
    import numpy as np
    from quality_seed_demo import world

    from xo_recommender.engine.model import EngineParams, Recommender
    from xo_recommender.engine.selfeval import learn_ranking

    catalogue, events, users = world(42, *size)
    now = float(np.max(events.last_seen))
    started = time.perf_counter()
    params = EngineParams()
    detail = {}
    if kind == "learned":
        learned = learn_ranking(catalogue, events, users, params, budget_seconds=budget)
        params = replace(params, ranking=learned.ranking)
        detail = {"learn_s": round(time.perf_counter() - started, 1),
                  "serving": learned.serving, "notes": learned.notes}
    Recommender.fit(catalogue, events, params, now=now)
    queue.put({"seconds": time.perf_counter() - started,
               "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               **detail})


def measure(kind: str, size: tuple, budget: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, size, budget, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--businesses", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--budget", type=float, default=45.0, help="TUNING_SECONDS")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    size = ((2000, 500, 20_000) if args.smoke else
            (args.users, args.businesses, args.interactions))
    budget = 5.0 if args.smoke else args.budget
    print(f"world: {size[0]:,} users, {size[1]:,} businesses, {size[2]:,} interactions; "
          f"TUNING_SECONDS={budget:g}", flush=True)
    rows = {}
    for kind in ("plain fit (reference)", "learned"):
        runs = [measure("learned" if kind == "learned" else "plain", size, budget)
                for _ in range(max(args.runs, 1))]
        rows[kind] = {"seconds": statistics.median(r["seconds"] for r in runs),
                      "peak_mib": max(r["peak_mib"] for r in runs)}
        extra = {k: v for k, v in runs[-1].items() if k not in ("seconds", "peak_mib")}
        print(f"{kind:<24} {rows[kind]['seconds']:8.1f} s   peak {rows[kind]['peak_mib']:8,.0f}"
              f" MiB   {json.dumps(extra) if extra else ''}", flush=True)
    ratio = rows["learned"]["seconds"] / rows["plain fit (reference)"]["seconds"]
    print(f"learned / plain: {ratio:.2f}x time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
