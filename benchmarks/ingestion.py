"""Buffered ingestion: what a deferred event costs the host's request, and whether a
Celery worker keeps up with a sustained stream without losing an event.

In one run, on PostgreSQL and Redis with a real Celery worker (solo pool) in another
process:

* latency per call of ``defer_interaction`` (buffered) beside ``record_interaction``
  (inline upsert, the reference) and a bare Redis PING (the floor), median of 3 rounds;
* a sustained stream: ``--producers`` processes send ``--rate`` events per second in
  all for ``--seconds``, then the buffer is drained; the stored counts (sum of
  ``count``) must equal the events sent;
* the HTTP batch endpoint (``POST /api/recommend/interaction/`` with a JSON list of
  ``--batch`` events, token authentication and throttling on) served by gunicorn
  (``--http-workers``), loaded by ``--http-clients`` keep-alive client processes for
  ``--http-seconds``, median of ``--runs``: events/s beside single-event POSTs and
  beside ``record_interactions`` called in-process on the same batches (the ceiling);
  the stored counts must equal the events the server acknowledged (201);
* a crash: while a stream runs, the worker is killed with SIGKILL (at random, maybe in
  the middle of a batch) ``--kills`` times and a new one started each time; once the
  stream has stopped, the claims the dead workers left are taken as expired (their
  5-minute lease and the 60-s "scheduled" mark are ended by hand instead of waited
  for), and the stored counts must equal the events sent: none lost, none twice.

    python benchmarks/ingestion.py                 # 2,000/s for 60 s, crash, then HTTP
    python benchmarks/ingestion.py --part crash    # the crash scenario only
    python benchmarks/ingestion.py --part http     # the HTTP batch endpoint only
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
    parser.add_argument("--part", choices=("all", "buffered", "crash", "http"),
                        default="all")
    parser.add_argument("--kills", type=int, default=3, help="workers killed (crash part)")
    parser.add_argument("--batch", type=int, default=100, help="events per HTTP request")
    parser.add_argument("--http-seconds", type=float, default=20.0)
    parser.add_argument("--http-clients", type=int, default=4)
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--runs", type=int, default=3, help="HTTP runs (median)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.calls, args.rate, args.kills = 3.0, 200, 500, 1
        args.http_seconds, args.runs = 2.0, 1

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
    if args.part == "http":
        http_batches(args, env)
        return
    queue = f"xo-ingest-{os.getpid()}"
    workers = [start_worker(queue, env)]
    try:
        if args.part in ("all", "buffered"):
            run(args, queue)
        if args.part in ("all", "crash"):
            crash(args, queue, env, workers)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
    if args.part == "all":
        http_batches(args, env)


def start_worker(queue: str, env: dict) -> subprocess.Popen:
    """A Celery worker (solo pool) of this run's own queue."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "example_project", "worker", "--pool", "solo",
         "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def stored() -> int:
    """The events the table holds (the sum of the counts)."""
    from django.db.models import Sum

    from xo_recommender.models import Interaction

    return Interaction.objects.aggregate(n=Sum("count"))["n"] or 0


def senders() -> tuple[list, list]:
    """The users and businesses the benchmark's events are drawn from."""
    from xo_recommender.models import RecBusiness, RecUser

    return (list(RecUser.objects.values_list("pk", flat=True)[:2000]),
            list(RecBusiness.objects.values_list("pk", flat=True)[:500]))


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

    from xo_recommender.services import record_interaction
    from xo_recommender.services.ingestion import _redis, defer_interaction

    redis, key = _redis()
    redis.delete(key, f"{key}:scheduled")
    users, places = senders()
    rng = random.Random(3)

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


def crash(args, queue: str, env: dict, workers: list) -> None:
    """Kill workers mid-stream; every event must be stored exactly once."""
    import multiprocessing as mp
    import random
    import signal

    import django

    django.setup()
    from celery import current_app
    from django.db import connections

    from xo_recommender.services.ingestion import _redis, defer_interaction

    current_app.conf.task_default_queue = queue
    redis, key = _redis()
    users, places = senders()

    while redis.llen(key) or redis.hlen(f"{key}:claims"):  # earlier parts drain first
        time.sleep(0.1)
    base = stored()
    connections.close_all()
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 0.5
    producer = ctx.Process(target=produce, args=(args.rate, args.seconds, start_at, users,
                                                 places, 99, results))
    producer.start()
    rng = random.Random(7)
    killed_at = sorted(rng.uniform(0.1, 0.9) * args.seconds for _ in range(args.kills))
    for at in killed_at:
        time.sleep(max(0.0, start_at + at - time.time()))
        workers[-1].send_signal(signal.SIGKILL)
        workers[-1].wait(timeout=30)
        workers.append(start_worker(queue, env))
    sent = results.get()
    producer.join()
    time.sleep(1.0)
    claims = redis.hkeys(f"{key}:claims")  # left by the dead (or held by the live one)
    for token in claims:
        redis.hset(f"{key}:claims", token, 0)  # the lease has run out
    redis.delete(f"{key}:scheduled")  # so has the dead worker's "flush scheduled" mark
    defer_interaction(users[0], places[0], "view")  # the next event schedules a flush
    sent += 1
    t0 = time.perf_counter()
    while (stored() - base < sent or redis.llen(key) or redis.hlen(f"{key}:claims")) \
            and time.perf_counter() - t0 < 120:
        time.sleep(0.1)
    total = stored() - base
    print(f"\ncrash: {args.kills} worker(s) killed (SIGKILL) at "
          f"{', '.join(f'{t:.1f}' for t in killed_at)} s of a {args.seconds:.0f}-s stream; "
          f"{len(claims)} claim(s) found afterwards; sent {sent:,}; stored {total:,}; "
          f"lost {max(sent - total, 0):,}; counted twice {max(total - sent, 0):,}")
    if total != sent:
        sys.exit("events were lost or counted twice")


def post_batches(port: int, token: str, bodies: list[bytes], seconds: float,
                 start_at: float, results) -> None:
    """One client process: POST the bodies in turn on one keep-alive connection."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    time.sleep(max(0.0, start_at - time.time()))
    acknowledged, failed, times, i = 0, {}, [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        conn.request("POST", "/api/recommend/interaction/", bodies[i % len(bodies)], headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - t0)
        if response.status == 201:
            acknowledged += 1
        else:
            failed[response.status] = failed.get(response.status, 0) + 1
        i += 1
    conn.close()
    results.put((acknowledged, failed, times))


def http_batches(args, env: dict) -> None:
    """Events/s through the HTTP batch endpoint, beside one-event POSTs and the in-process
    upsert of the same batches; stored counts checked against the 201s."""
    import json
    import multiprocessing as mp
    import random
    import signal

    import api_load
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from xo_recommender.services import InteractionEvent, record_interactions

    users, places = senders()
    # a service account (staff): one token records for any user, as a host's backend does
    account, _ = get_user_model().objects.get_or_create(
        username="xo-bench-ingest", defaults={"is_staff": True})
    token = Token.objects.get_or_create(user=account)[0].key

    def batches(size: int, seed: int, n: int = 50) -> list[list[dict]]:
        rng = random.Random(seed)
        return [[{"user_id": rng.choice(users), "business_id": rng.choice(places),
                  "interaction_type": rng.choice(("view", "view", "like", "save"))}
                 for _ in range(size)] for _ in range(n)]

    port = api_load.free_port()
    rows: dict[str, list[tuple[float, float, float]]] = {}
    lost = mismatched = 0
    failures: dict[int, int] = {}
    connections.close_all()
    server = api_load.serve(env, port, args.http_workers)
    try:
        ctx = mp.get_context("fork")
        for size in sorted({1, args.batch}):
            label = f"HTTP, {size} event{'s' if size > 1 else ''}/request"
            for run_index in range(args.runs):
                bodies = [[json.dumps(b).encode() for b in batches(size, 100 * run_index + c)]
                          for c in range(args.http_clients)]
                base = stored()
                connections.close_all()  # the clients are forked: no shared sockets
                results = ctx.Queue()
                start_at = time.time() + 0.3
                clients = [ctx.Process(target=post_batches, args=(
                    port, token, bodies[c], args.http_seconds, start_at, results))
                    for c in range(args.http_clients)]
                for c in clients:
                    c.start()
                outcomes = [results.get() for _ in clients]
                for c in clients:
                    c.join()
                elapsed = time.time() - start_at
                acknowledged = sum(a for a, _, _ in outcomes) * size
                for _, failed, _ in outcomes:
                    for code, n in failed.items():
                        failures[code] = failures.get(code, 0) + n
                total = stored() - base  # every 201 was committed before it was sent
                lost += max(acknowledged - total, 0)
                mismatched += total != acknowledged
                times = [t for _, _, ts in outcomes for t in ts]
                rows.setdefault(label, []).append(
                    (acknowledged / elapsed, pct(times, 50), pct(times, 99)))
        # the ceiling: the same batches upserted in this process, no HTTP, no auth
        label = f"record_interactions, {args.batch}/call"
        for run_index in range(args.runs):
            calls = [[InteractionEvent(e["user_id"], e["business_id"], e["interaction_type"])
                      for e in b] for b in batches(args.batch, 7 + run_index)]
            times, sent, t0 = [], 0, time.perf_counter()
            while time.perf_counter() - t0 < args.http_seconds:
                t1 = time.perf_counter()
                sent += record_interactions(calls[len(times) % len(calls)])
                times.append(time.perf_counter() - t1)
            rows.setdefault(label, []).append(
                (sent / (time.perf_counter() - t0), pct(times, 50), pct(times, 99)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"\nHTTP batch endpoint: gunicorn {args.http_workers} workers, {args.http_clients} "
          f"keep-alive clients × {args.http_seconds:.0f} s, median of {args.runs}")
    print(f"{'path':<34} {'events/s':>9} {'req p50 ms':>10} {'req p99 ms':>10}")
    for label, runs in rows.items():
        print(f"{label:<34} {statistics.median(r[0] for r in runs):>9,.0f} "
              f"{statistics.median(r[1] for r in runs):>10.2f} "
              f"{statistics.median(r[2] for r in runs):>10.2f}")
    print(f"lost {lost:,}; runs where stored ≠ acknowledged: {mismatched}; "
          f"non-201 responses: {failures or 0}")
    if lost or mismatched or failures:
        sys.exit("the HTTP batch endpoint lost or refused events")


if __name__ == "__main__":
    main()
