"""Does the collaborative model fit XO Black's size? Fit time, peak memory, serving latency.

Synthetic implicit data with a realistic shape: Zipf-like item popularity, log-normal
user activity, users in taste clusters (most of a user's items come from their
cluster), repeated events (count), mixed interaction-type weights and timestamps over a
year. The largest size is XO Black's: 200,000 users × 50,000 items × 5,000,000
interactions; smaller sizes scale users and items down proportionally.

Each size runs in a fresh subprocess limited to 2 threads, so the peak RSS
(``ru_maxrss``) belongs to that size alone; it includes data generation. When
``implicit`` is installed (``pip install -e '.[bench]'``) every size also fits its ALS
(64 factors, 15 iterations, 2 threads) on the same matrix in another fresh subprocess,
and the table shows our fit time as a ratio of ALS's from the same run. ``load`` is the
machine's 1-minute load average when the size finished (2 cores: above 2 means other
work was competing for them, which slows ALS's two threads the most).

    python benchmarks/engine_scale.py            # 0.5M, 1M, 2M, 5M
    python benchmarks/engine_scale.py --sizes 5000000 --runs 3   # XO Black, median of 3
    python benchmarks/engine_scale.py --smoke    # one tiny size, for CI
    python benchmarks/engine_scale.py --compare-exact 1000000   # approximation's cost
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xo_recommender.engine.collaborative import CollaborativeModel  # noqa: E402
from xo_recommender.engine.matrix import build_matrix, user_row  # noqa: E402
from xo_recommender.engine.metrics import ndcg_at_k, precision_at_k, rank_top_k  # noqa: E402

FULL = (200_000, 50_000, 5_000_000)
SIZES = [500_000, 1_000_000, 2_000_000, 5_000_000]
TYPE_WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0, 2.5])  # view, like, save, purchase, share
DAY = 86_400.0


def synthetic(n_users: int, n_items: int, n_inter: int, seed: int = 0):
    """Arrays (user, item, weight, count, last_seen) with about ``n_inter`` unique pairs."""
    rng = np.random.default_rng(seed)
    n_clusters = max(4, n_users // 2_000)
    pop = 1.0 / np.power(np.arange(1, n_items + 1) + 5.0, 0.9)
    pop = pop[rng.permutation(n_items)]
    item_cluster = rng.integers(0, n_clusters, n_items)
    activity = rng.lognormal(0.0, 1.0, n_users)
    user_cluster = rng.integers(0, n_clusters, n_users)

    draws = int(n_inter * 1.3)
    users = rng.choice(n_users, size=draws, p=activity / activity.sum())
    items = rng.choice(n_items, size=draws, p=pop / pop.sum())  # global popularity
    in_cluster = rng.random(draws) < 0.7
    order = np.argsort(item_cluster, kind="stable")
    bounds = np.searchsorted(item_cluster[order], np.arange(n_clusters + 1))
    for c in range(n_clusters):
        members = order[bounds[c] : bounds[c + 1]]
        pick = np.flatnonzero(in_cluster & (user_cluster[users] == c))
        if members.size and pick.size:
            w = pop[members] / pop[members].sum()
            items[pick] = members[rng.choice(members.size, size=pick.size, p=w)]

    key = users.astype(np.int64) * n_items + items
    uniq, count = np.unique(key, return_counts=True)
    uniq, count = uniq[:n_inter], count[:n_inter]
    rng.shuffle(uniq)
    u, i = uniq // n_items, uniq % n_items
    weight = TYPE_WEIGHTS[rng.integers(0, TYPE_WEIGHTS.size, u.size)]
    last_seen = rng.uniform(0, 365 * DAY, u.size)
    return u, i, weight, count, last_seen


def synthetic_matrix(n_inter: int, seed: int):
    """The weighted user×item matrix of one size (users and items scaled from FULL)."""
    scale = n_inter / FULL[2]
    n_users = max(50, int(FULL[0] * scale))
    n_items = max(20, int(FULL[1] * scale))
    u, i, w, c, t = synthetic(n_users, n_items, n_inter, seed)
    now = 365 * DAY
    return build_matrix(u, i, w, c, t, shape=(n_users, n_items), now=now, half_life=90 * DAY)


def run_als(n_inter: int, runs: int, seed: int) -> dict:
    """The reference: ``implicit`` ALS, 64 factors, 15 iterations, 2 threads, same matrix."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")  # implicit parallelises itself; nested BLAS threads hurt
    from implicit.cpu.als import AlternatingLeastSquares

    x = synthetic_matrix(n_inter, seed)
    fits = []
    for _ in range(runs):
        als = AlternatingLeastSquares(factors=64, iterations=15, num_threads=2,
                                      random_state=seed, calculate_training_loss=False)
        start = time.perf_counter()
        als.fit(x, show_progress=False)
        fits.append(time.perf_counter() - start)
    return {"fit_s": float(np.median(fits)),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_one(n_inter: int, runs: int, seed: int) -> dict:
    """Measure one size in this process (called inside the subprocess)."""
    x = synthetic_matrix(n_inter, seed)
    n_users, n_items = x.shape
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fits = []
    model = None
    for _ in range(runs):
        model = None
        start = time.perf_counter()
        model = CollaborativeModel().fit(x)
        fits.append(time.perf_counter() - start)
    assert model is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rng = np.random.default_rng(seed + 1)
    xc = x.tocsr()
    lat = []
    for user in rng.choice(n_users, size=1000, replace=n_users < 1000):
        lo, hi = xc.indptr[user], xc.indptr[user + 1]
        start = time.perf_counter()
        row = user_row(xc.indices[lo:hi], n_items, xc.data[lo:hi])
        scores = model.score(row)
        scores[row.indices] = -np.inf
        top = np.argpartition(-scores, 10)[:10]
        top = top[np.argsort(-scores[top])]
        lat.append(time.perf_counter() - start)
    lat_ms = np.array(lat) * 1000
    return {
        "interactions": int(x.nnz),
        "users": n_users,
        "items": n_items,
        "path": model.path_,
        "fit_s": float(np.median(fits)),
        "fit_all_s": fits,
        "fit_runs": runs,
        "rss_before_fit_mib": rss_before,
        "peak_rss_mib": peak,
        "artifact_mib": len(model.to_bytes()) / 2**20,
        "s_nnz": int(model.similarity_.nnz),
        "p50_ms": float(np.percentile(lat_ms, 50)),
        "p99_ms": float(np.percentile(lat_ms, 99)),
    }


def compare_exact(n_inter: int, seed: int, n_eval: int = 2000) -> None:
    """How much ranking quality does the approximation give up? Hold out 20% of each
    sampled user's items, fit the exact and the approximate model, compare P/NDCG@10."""
    scale = n_inter / FULL[2]
    n_users, n_items = max(50, int(FULL[0] * scale)), max(20, int(FULL[1] * scale))
    u, i, w, c, t = synthetic(n_users, n_items, n_inter, seed)
    rng = np.random.default_rng(seed + 2)
    eval_users = rng.choice(n_users, size=min(n_eval, n_users), replace=False)
    held = np.isin(u, eval_users) & (rng.random(u.size) < 0.2)
    x = build_matrix(u[~held], i[~held], w[~held], c[~held], t[~held], shape=(n_users, n_items))
    truth: dict[int, set[int]] = {}
    for uu, ii in zip(u[held].tolist(), i[held].tolist(), strict=True):
        truth.setdefault(uu, set()).add(ii)
    popular = np.asarray((x != 0).sum(axis=0)).ravel().astype(np.float32)
    models = {
        "most popular": None,
        "exact": CollaborativeModel(exact_max_items=n_items),
        "approx": CollaborativeModel()
        if n_items > CollaborativeModel().exact_max_items
        else CollaborativeModel(exact_max_items=n_items - 1, head_items=int(0.4 * n_items)),
    }
    print(f"{n_items:,} items, {x.nnz:,} train interactions, {len(truth):,} users evaluated")
    for name, model in models.items():
        start = time.perf_counter()
        if model is not None:
            model.fit(x)
        fit_s = time.perf_counter() - start
        p = n = 0.0
        for user, rel in truth.items():
            row = x[user]
            scores = popular if model is None else model.score(row)
            top = rank_top_k(scores, 10, exclude=row.indices).tolist()
            p += precision_at_k(top, rel, 10)
            n += ndcg_at_k(top, rel, 10)
        path = "-" if model is None else model.path_
        if model is not None and model.path_ == "approx":
            path += f" head={min(model.head_items, model.exact_max_items)}"
        print(
            f"{name:<14} path={path:<18} P@10={p / len(truth):.4f} "
            f"NDCG@10={n / len(truth):.4f} fit={fit_s:.1f}s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tiny size (CI)")
    parser.add_argument("--sizes", type=int, nargs="*", help="interaction counts to run")
    parser.add_argument("--runs", type=int, default=0, help="fits per size (default: auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-exact",
        type=int,
        metavar="N",
        help="instead: held-out quality of exact vs approximate fit at N interactions",
    )
    parser.add_argument("--no-als", action="store_true", help="skip the ALS reference")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-als", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.compare_exact:
        compare_exact(args.compare_exact, args.seed)
        return

    if args.child:
        print(json.dumps(run_one(args.child, args.runs or 1, args.seed)))
        return
    if args.child_als:
        print(json.dumps(run_als(args.child_als, args.runs or 1, args.seed)))
        return

    sizes = [20_000] if args.smoke else (args.sizes or SIZES)
    als = not args.no_als and importlib.util.find_spec("implicit") is not None
    if not als:
        print("ALS reference skipped (pip install -e '.[bench]' for implicit)")
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    header = (
        f"{'interactions':>12} {'users':>8} {'items':>7} {'path':>6} {'fit s':>7} "
        f"{'runs':>4} {'RSS pre-fit':>11} {'peak RSS MiB':>12} {'artifact MiB':>12} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'ALS s':>7} {'ALS MiB':>7} {'fit/ALS':>7} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        runs = args.runs or (3 if n <= 1_000_000 else 1)
        r = _child(["--child", str(n)], runs, args.seed, env)
        ref = _child(["--child-als", str(n)], runs, args.seed, env) if als else None
        print(
            f"{r['interactions']:>12,} {r['users']:>8,} {r['items']:>7,} {r['path']:>6} "
            f"{r['fit_s']:>7.1f} {r['fit_runs']:>4} {r['rss_before_fit_mib']:>11.0f} "
            f"{r['peak_rss_mib']:>12.0f} "
            f"{r['artifact_mib']:>12.1f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
            + (f"{ref['fit_s']:>7.1f} {ref['peak_rss_mib']:>7.0f} "
               f"{r['fit_s'] / ref['fit_s']:>7.2f}" if ref else f"{'-':>7} {'-':>7} {'-':>7}")
            + f" {os.getloadavg()[0]:>5.1f}",
            flush=True,
        )


def _child(what: list[str], runs: int, seed: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, *what, "--runs", str(runs), "--seed", str(seed)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{' '.join(what)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])

if __name__ == "__main__":
    main()
