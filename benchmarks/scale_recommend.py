"""Scale of the Django side: seed, rebuild and ``recommend_for`` on PostgreSQL.

For each size (interactions; users = n/25, businesses = n/100, as XO Black's
200k / 50k / 5M) it uses a database ``xo_bench_<n>`` (``--db-prefix``; seeded once by ``seed_demo``;
``--reseed`` to redo), runs ``rebuild_recommendations`` in a child process (wall time,
peak RSS) and times uncached ``recommend_for`` in-process over random users (the model
loaded first; ``--runs`` probes, medians shown, with the targets beside them). The
floor is a single-row primary-key query timed in the same process: the ratio shows how
many plain round trips one recommendation costs; "engine" is the median time inside
``Recommender.recommend`` (the rest: queries, cache, Django). ``--profile`` prints a
pyinstrument profile of the same calls instead. ``--fixed-blend`` times the same calls
with ``BLEND_WEIGHTS`` set to the old hand-set weights (the fixed blend's path, which a
setting switches to without a rebuild) instead of the learned ranking.

    python benchmarks/scale_recommend.py                       # 0.5M, 1M, 2M, 5M
    python benchmarks/scale_recommend.py --sizes 5000000 --users-sampled 1000
    python benchmarks/scale_recommend.py --sizes 5000000 --rebuilds 0 --profile
    python benchmarks/scale_recommend.py --sizes 5000000 --rebuilds 0 --fixed-blend
    python benchmarks/scale_recommend.py --smoke               # tiny, for CI

Needs PostgreSQL (``--server``, default postgres://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Uncached ``recommend_for`` at XO Black's size (5M): the goal, and the minimum.
TARGETS = (((5.0, 15.0), "issue 10"), ((10.0, 30.0), "issue 7"))


def run(cmd: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, text=True,
                          capture_output=True, **kw)


def database_env(server: str, name: str) -> dict:
    env = {**os.environ, "DATABASE_URL": f"{server.rstrip('/')}/{name}",
           "DJANGO_SETTINGS_MODULE": "example_project.settings",
           "DJANGO_DEBUG": "0"}  # as in production: no query log, no debug cursor
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    return env


def ensure_database(server: str, name: str) -> bool:
    """Create the database if needed; True when it was created."""
    import psycopg

    with psycopg.connect(f"{server.rstrip('/')}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
        return not exists


def measure_size(n: int, args) -> dict:
    users, businesses = max(n // 25, 20), max(n // 100, 10)
    name = f"{args.db_prefix}_{n}"
    env = database_env(args.server, name)
    created = ensure_database(args.server, name)
    py = sys.executable
    run([py, "manage.py", "migrate", "--noinput", "-v0"], env)
    seed_seconds = None
    if created or args.reseed:
        t0 = time.perf_counter()
        run([py, "manage.py", "seed_demo", "--users", str(users), "--businesses",
             str(businesses), "--interactions", str(n), "--quiet"], env)
        seed_seconds = time.perf_counter() - t0
    rebuilds = []
    for _ in range(args.rebuilds):
        t0 = time.perf_counter()
        child = run([py, "manage.py", "rebuild_recommendations", "-v0"], env)
        wall = time.perf_counter() - t0
        # the command's summary reports the rebuild process's own peak RSS
        rss_mib = float(child.stdout.split("peak memory", 1)[1].split("MiB")[0]
                        .replace(",", ""))
        rebuilds.append((wall, rss_mib))
    probes = []
    for _ in range(1 if args.profile else args.runs):
        probe = run([py, __file__, "--latency-probe", "--users-sampled",
                     str(args.users_sampled), *(["--profile"] if args.profile else []),
                     *(["--fixed-blend"] if args.fixed_blend else [])], env)
        if args.profile:
            print(probe.stdout)
            sys.exit(0)
        probes.append(json.loads(probe.stdout.strip().splitlines()[-1]))
    # each figure the median over the runs (separate processes, the same users)
    latency = {key: statistics.median(p[key] for p in probes) for key in probes[0]}
    return {
        "interactions": n, "users": users, "businesses": businesses,
        "seed_s": seed_seconds,
        "rebuild_s": statistics.median(w for w, _ in rebuilds) if rebuilds else None,
        "rebuild_rss_mib": max(r for _, r in rebuilds) if rebuilds else None,
        **latency,
    }


def latency_probe(users_sampled: int, profile: bool = False, fixed_blend: bool = False
                  ) -> None:
    """In a child with DATABASE_URL set: time recommend_for over random users.

    ``profile``: run the same calls under pyinstrument (the ``bench`` extra) and print
    where the time goes instead of the figures (profiling slows every call down)."""
    import random

    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    if fixed_blend:
        from django.conf import settings

        from xo_recommender.conf import DEFAULT_BLEND_WEIGHTS
        from xo_recommender.conf import settings as rec_settings

        settings.XO_RECOMMENDER = {**getattr(settings, "XO_RECOMMENDER", {}),
                                   "BLEND_WEIGHTS": dict(DEFAULT_BLEND_WEIGHTS)}
        rec_settings.reload()
    from xo_recommender import recommend_for
    from xo_recommender.models import Interaction, RecUser

    rng = random.Random(7)
    active_users = list(Interaction.objects.values_list("user_id", flat=True).distinct()[:200_000])
    sample = rng.sample(active_users, min(users_sampled, len(active_users)))
    recommend_for(sample[0])  # load the model into this process
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        with profiler:
            for user_id in sample:
                recommend_for(user_id, 10)
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    from xo_recommender.engine.model import Recommender

    engine_time = [0.0]
    serve = Recommender.recommend

    def timed(self, query):  # the engine's share of each call
        t0 = time.perf_counter()
        try:
            return serve(self, query)
        finally:
            engine_time[0] += time.perf_counter() - t0

    Recommender.recommend = timed
    floor, times, engine = [], [], []
    for user_id in sample:
        t0 = time.perf_counter()
        RecUser.objects.filter(pk=user_id).first()
        floor.append(time.perf_counter() - t0)
        engine_time[0] = 0.0
        t0 = time.perf_counter()
        recommend_for(user_id, 10)
        times.append(time.perf_counter() - t0)
        engine.append(engine_time[0])
    times.sort()
    floor.sort()
    engine.sort()

    def pct(values, p):
        return 1000 * values[min(len(values) - 1, int(p / 100 * len(values)))]

    print(json.dumps({"sampled": len(sample), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
                      "engine_p50_ms": pct(engine, 50), "floor_p50_ms": pct(floor, 50),
                      "ratio_p50": pct(times, 50) / max(pct(floor, 50), 1e-9)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500000,1000000,2000000,5000000")
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--rebuilds", type=int, default=3,
                        help="median of this many (0: time recommend_for on the live model)")
    parser.add_argument("--users-sampled", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3,
                        help="latency probes per size (separate processes); medians shown")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--db-prefix", default="xo_bench",
                        help="databases are <prefix>_<n> (one per size, kept for reuse)")
    parser.add_argument("--smoke", action="store_true", help="one tiny size (CI)")
    parser.add_argument("--profile", action="store_true",
                        help="print a pyinstrument profile of the uncached calls instead")
    parser.add_argument("--fixed-blend", action="store_true",
                        help="time recommend_for under fixed BLEND_WEIGHTS instead")
    parser.add_argument("--latency-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.latency_probe:
        latency_probe(args.users_sampled, args.profile, args.fixed_blend)
        return
    if args.smoke:
        args.sizes, args.rebuilds, args.users_sampled, args.runs = "20000", 1, 50, 1
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'interactions':>12} {'users':>8} {'businesses':>10} {'seed s':>8} "
          f"{'rebuild s':>10} {'peak MiB':>9} {'p50 ms':>7} {'p99 ms':>7} {'floor p50':>9} "
          f"{'×floor':>7} {'engine p50':>10}", flush=True)
    for n in sizes:
        r = measure_size(n, args)
        seed = f"{r['seed_s']:.1f}" if r["seed_s"] is not None else "reused"
        rebuild, rss = ((f"{r['rebuild_s']:.1f}", f"{r['rebuild_rss_mib']:,.0f}")
                        if r["rebuild_s"] is not None else ("-", "-"))
        print(f"{r['interactions']:>12,} {r['users']:>8,} {r['businesses']:>10,} {seed:>8} "
              f"{rebuild:>10} {rss:>9} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['floor_p50_ms']:>9.3f} {r['ratio_p50']:>7.1f} "
              f"{r['engine_p50_ms']:>10.2f}", flush=True)
        for (p50, p99), source in TARGETS if n >= 5_000_000 else ():
            met = r["p50_ms"] <= p50 and r["p99_ms"] <= p99
            print(f"{'':>12} target ({source}): p50 <= {p50:g} ms, p99 <= {p99:g} ms: "
                  f"{'met' if met else 'NOT met'}", flush=True)


if __name__ == "__main__":
    main()
