"""HTTP load on the REST API: cache-hit and cache-miss answers against a floor.

Serves the example project with gunicorn on 127.0.0.1 (PostgreSQL + Redis), and loads it
with wrk from the same machine, authenticated by DRF tokens of real users:

* **floor** — ``bench/floor/``: a minimal DRF endpoint (same authentication) returning a
  fixed 10-item list from the cache: what any endpoint in this server costs at least;
* **hit** — ``GET api/recommend/{user_id}/`` for users whose answer is cached;
* **miss** — the same endpoint right after every answer was retired (a business change
  bumps the catalogue generation), one request per user, sequential: the p99 of a
  computed answer.

Each wrk run is repeated (``--runs``, floor and hit alternating, median reported). Prints
requests/s, p50/p99 and non-2xx counts, and the ratios hit/floor (targets: ≥ 90 % of the
floor's requests/s, p99 ≤ 1.2× the floor's).

    python benchmarks/api_load.py                  # the 5M-interaction database
    python benchmarks/api_load.py --smoke          # a tiny database, short runs (CI)

Needs ``wrk`` (Debian package; installed with apt-get when missing) and gunicorn.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = """
tokens = {%s}
ids = {%s}
counter = 0
request = function()
  counter = counter + 1
  local i = (counter %% #ids) + 1
  local path = string.gsub(wrk.path, "{id}", ids[i])
  return wrk.format("GET", path, {["Authorization"] = "Token " .. tokens[i]})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                       capture_output=True)
    return shutil.which("wrk")


def django_env(database_url: str, redis_url: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "example_project.settings", "DJANGO_DEBUG": "0",
           "CACHE_KEY_PREFIX": f"bench{os.getpid()}"}
    env.pop("CELERY_BROKER_URL", None)
    return env


def manage(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          text=True, capture_output=True).stdout


def prepare(env: dict, users: int) -> list[tuple[int, str]]:
    """Tokens for ``users`` random users with interactions (created in a child process)."""
    code = f"""
import random, json, django
django.setup()
from rest_framework.authtoken.models import Token
from xo_recommender.models import Interaction
from django.contrib.auth import get_user_model
ids = list(Interaction.objects.values_list("user_id", flat=True).distinct()[:100000])
random.Random(3).shuffle(ids)
users = get_user_model().objects.in_bulk(ids[:{users}])
print(json.dumps([[u.pk, Token.objects.get_or_create(user=u)[0].key] for u in users.values()]))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         text=True, capture_output=True).stdout
    return [tuple(x) for x in json.loads(out.strip().splitlines()[-1])]


def serve(env: dict, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "example_project.wsgi", "-b", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning", "--access-logfile", "/dev/null"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/recommend/health/", timeout=2)
            return proc
        except Exception:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("gunicorn did not start: " + (proc.stderr.read() or "")[-2000:])


def get(port: int, path: str, token: str) -> tuple[int, float, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Token {token}"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.loads(r.read())
            return r.status, time.perf_counter() - t0, body
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t0, {}


def wrk(binary: str, port: int, path: str, pairs, seconds: int, connections: int) -> dict:
    tokens = ",".join(f'"{t}"' for _, t in pairs)
    ids = ",".join(f'"{u}"' for u, _ in pairs)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % (tokens, ids))
        script = f.name
    try:
        out = subprocess.run(
            [binary, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script,
             f"http://127.0.0.1:{port}{path}"], check=True, text=True, capture_output=True,
        ).stdout
    finally:
        os.unlink(script)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": ms("50"), "p99": ms("99"), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def median_run(runs: list[dict]) -> dict:
    return {"rps": statistics.median(r["rps"] for r in runs),
            "p50": statistics.median(r["p50"] for r in runs),
            "p99": statistics.median(r["p99"] for r in runs),
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": "; ".join(r["socket_errors"] for r in runs if r["socket_errors"])}


def smoke_database(server: str) -> str:
    import psycopg

    name = "xo_bench_api_smoke"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        fresh = not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s",
                                 (name,)).fetchone()
        if fresh:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = django_env(f"{server}/{name}", "redis://127.0.0.1:6379/12")
    manage(env, "migrate", "--noinput", "-v0")
    if fresh:
        manage(env, "seed_demo", "--users", "400", "--businesses", "200", "--interactions",
               "8000", "--quiet")
    manage(env, "rebuild_recommendations", "-v0")
    return f"{server}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xo_bench_5000000"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--users", type=int, default=500, help="distinct users loaded")
    parser.add_argument("--miss-users", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        server = args.database_url.rsplit("/", 1)[0]
        args.database_url = smoke_database(server)
        args.users, args.miss_users, args.seconds, args.runs = 50, 30, 2, 1
    binary = ensure_wrk()
    env = django_env(args.database_url, args.redis_url)
    pairs = prepare(env, args.users)
    port = free_port()
    server = serve(env, port, args.workers)
    try:
        api = "/api/recommend/"
        # warm: the model in every worker, and each user's answer in the cache
        for user_id, token in pairs:
            status, _, body = get(port, f"{api}{user_id}/", token)
            assert status == 200, (status, body)
        for _ in range(args.workers * 4):
            get(port, "/bench/floor/", pairs[0][1])
        # and, unmeasured, hits until every worker has read the active flags of the pages
        # it serves (a process reads a page's flags once; its thread keeps them young)
        wrk(binary, port, api + "{id}/", pairs, max(2, args.seconds // 3), args.connections)
        # floor and hit alternate, run by run, so that a change in the machine's load
        # falls on both alike
        runs = {"floor": [], "hit": []}
        for _ in range(args.runs):
            for name, path in (("floor", "/bench/floor/"), ("hit", api + "{id}/")):
                runs[name].append(wrk(binary, port, path, pairs, args.seconds,
                                      args.connections))
        results = {name: median_run(each) for name, each in runs.items()}
        # miss: retire every cached answer (a business change), then one request per user
        misses = []
        sample = random.Random(5).sample(pairs, min(args.miss_users, len(pairs)))
        code = ("import django; django.setup(); from xo_recommender import cache; "
                "cache.invalidate_catalogue()")
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
        for user_id, token in sample:
            status, seconds, body = get(port, f"{api}{user_id}/", token)
            assert status == 200 and body["cached"] is False, (status, body.get("cached"))
            misses.append(seconds * 1000)
        misses.sort()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    print(f"API load: gunicorn {args.workers} workers, wrk 2 threads × {args.connections} "
          f"connections × {args.seconds}s, median of {args.runs}; {len(pairs)} users, "
          f"database {args.database_url.rsplit('/', 1)[1]}")
    print(f"{'endpoint':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, label in (("floor", "floor: fixed list from cache"),
                        ("hit", "GET {user_id}/ cache hit")):
        r = results[name]
        errors = f"  socket errors: {r['socket_errors']}" if r["socket_errors"] else ""
        print(f"{label:<34} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{r['non2xx']:>8}{errors}")
    p50 = misses[len(misses) // 2]
    p99 = misses[min(len(misses) - 1, int(0.99 * len(misses)))]
    print(f"{'GET {user_id}/ cache miss (seq.)':<34} {'':>9} {p50:>8.2f} {p99:>8.2f} {0:>8}")
    hit, floor = results["hit"], results["floor"]
    print(f"\nhit/floor: {hit['rps'] / floor['rps']:.0%} of the floor's requests/s "
          f"(target ≥ 90%); p99 {hit['p99'] / floor['p99']:.2f}× the floor's (target ≤ 1.2×); "
          f"miss p99 {p99:.1f} ms (target ≤ 50 ms)")
    print("runs (req/s, floor / hit): " + ", ".join(
        f"{f['rps']:.0f} / {h['rps']:.0f}" for f, h in zip(runs["floor"], runs["hit"],
                                                           strict=True)))


if __name__ == "__main__":
    main()
