"""Buffered ingestion: what a deferred event costs the host's request, and whether a
Celery worker keeps up with a sustained stream without losing an event.

In one run, on PostgreSQL and Redis with a real Celery worker (solo pool) in another
process:

* latency per call of ``defer_interaction`` (buffered) beside ``record_interaction``
  (inline upsert, the reference) and a bare Redis PING (the floor), median of 3 rounds;
* a sustained stream: ``--producers`` processes send ``--rate`` events per second in
  all for ``--seconds``, then the buffer is drained; the stored counts (sum of
  ``count``) must equal the events sent.

    python benchmarks/ingestion.py                 # 2,000/s for 60 s
    python benchmarks/ingestion.py --smoke         # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return 1000 * values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--db", default="xo_bench_ingest")
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--broker", default=os.environ.get(
        "BENCH_BROKER", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--producers", type=int, default=2,
                        help="processes sending events (the host's web workers)")
    parser.add_argument("--calls", type=int, default=2000, help="latency calls per round")
    parser.add_argument("--smoke", action="store_true", help="a few seconds (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.calls, args.rate = 3.0, 200, 500

    import scale_recommend as sr

    env = sr.database_env(args.server, args.db)
    env.update({"REDIS_URL": args.redis, "CELERY_BROKER_URL": args.broker,
                "CACHE_KEY_PREFIX": f"xo-ingest-{os.getpid()}", "PYTHONPATH": str(ROOT)})
    if sr.ensure_database(args.server, args.db):
        sr.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
        sr.run([sys.executable, "manage.py", "seed_demo", "--users", "2000", "--businesses",
                "500", "--interactions", "1000", "--quiet"], env)
    else:
        sr.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    os.environ.update(env)
    queue = f"xo-ingest-{os.getpid()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "example_project", "worker", "--pool", "solo",
         "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        run(args, queue)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def produce(rate: float, seconds: float, start_at: float, users: list, places: list,
            seed: int, results) -> None:
    """One producer process (a web worker, say): ``rate`` deferred events per second."""
    import random

    from xo_recommender.services.ingestion import defer_interaction

    rng = random.Random(seed)
    time.sleep(max(0.0, start_at - time.time()))
    t0, sent = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - t0) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            defer_interaction(rng.choice(users), rng.choice(places), "view")
            sent += 1
        time.sleep(0.001)
    results.put(sent)


def run(args, queue: str) -> None:
    import random

    import django

    django.setup()
    from celery import current_app

    current_app.conf.task_default_queue = queue  # the benchmark's own worker
    from django.db.models import Sum

    from xo_recommender.models import Interaction, RecBusiness, RecUser
    from xo_recommender.services import record_interaction
    from xo_recommender.services.ingestion import _redis, defer_interaction

    redis, key = _redis()
    redis.delete(key, f"{key}:scheduled")
    users = list(RecUser.objects.values_list("pk", flat=True)[:2000])
    places = list(RecBusiness.objects.values_list("pk", flat=True)[:500])
    rng = random.Random(3)

    def stored() -> int:
        return Interaction.objects.aggregate(n=Sum("count"))["n"] or 0

    def drained(target: int, timeout: float = 120.0) -> float:
        t0 = time.perf_counter()
        while stored() < target and time.perf_counter() - t0 < timeout:
            time.sleep(0.05)
        return time.perf_counter() - t0

    rounds = {"redis PING (floor)": [], "defer_interaction": [], "record_interaction": []}
    for _ in range(3):
        for name in rounds:
            times = []
            for _ in range(args.calls):
                u, b = rng.choice(users), rng.choice(places)
                t0 = time.perf_counter()
                if name == "defer_interaction":
                    defer_interaction(u, b, "view")
                elif name == "record_interaction":
                    record_interaction(u, b, "view")
                else:
                    redis.ping()
                times.append(time.perf_counter() - t0)
            rounds[name].append((pct(times, 50), pct(times, 99)))
    print(f"latency per call, median of 3 rounds × {args.calls} calls")
    print(f"{'call':<22} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in rounds.items():
        print(f"{name:<22} {statistics.median(p for p, _ in r):>8.3f} "
              f"{statistics.median(p for _, p in r):>8.3f}")

    start = time.perf_counter()  # the latency rounds' events drain first
    while redis.llen(key) and time.perf_counter() - start < 120:
        time.sleep(0.1)
    time.sleep(1.0)
    base = stored()
    import multiprocessing as mp

    from django.db import connections

    connections.close_all()  # the producers are forked: no shared sockets
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 0.5
    producers = [ctx.Process(target=produce, args=(
        args.rate / args.producers, args.seconds, start_at, users, places, i, results))
        for i in range(args.producers)]
    for p in producers:
        p.start()
    sent = sum(results.get() for _ in producers)
    for p in producers:
        p.join()
    send_s = time.time() - start_at
    backlog = redis.llen(key)
    wait = drained(base + sent)
    total = stored() - base
    print(f"\nsustained: {sent:,} events in {send_s:.1f} s = {sent / send_s:,.0f}/s sent; "
          f"backlog at the end {backlog:,}; drained {wait:.1f} s later; stored {total:,}; "
          f"lost {sent - total:,}; written {total / (send_s + wait):,.0f}/s overall")
    if total != sent:
        sys.exit("events were lost")


if __name__ == "__main__":
    main()
