"""Reliability under faults: the API served by gunicorn while its dependencies fail.

The example project runs under gunicorn (2 workers) on PostgreSQL, reached through a TCP
proxy this script can close, and on a redis-server of its own (never the shared one)
that it can stop (SIGSTOP: hung) or kill. Each scenario sends real HTTP requests and
prints what came back:

* **database down** — the proxy refuses and cuts every open connection;
* **database locked** — another session holds the interaction table in ACCESS EXCLUSIVE;
* **redis dead / hung** — killed, or stopped with SIGSTOP, under requests; a save made
  during the hang must not be listed once Redis is back ("stale after recovery");
* **broker down** — the Celery broker URL points at a closed port: ``health/`` says so,
  the API answers, and ``rebuild_recommendations --async`` exits 1 with one line;
* **bodies** — JSON nested 5,000 deep, and 10 MB;
* **rebuild killed** — ``rebuild_recommendations`` SIGKILLed half-way; the next rebuild
  marks the orphan failed;
* **16 writers** — 16 threads POST the same (user, business, type), then distinct keys;
  the stored counts must equal the requests (rows lost).

Each line: requests, then by outcome (2xx, 4xx JSON, 503 JSON, any other 5xx, non-JSON),
p50 and max latency. It exits non-zero when a fault produced a 5xx other than 503 JSON,
an HTML answer, a lost row, a hung-cache request over 2 s or a stale answer.

    python benchmarks/reliability.py            # more requests per scenario
    python benchmarks/reliability.py --smoke    # a small size (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults import OwnRedis, TcpProxy, free_port  # noqa: E402

API = "/api/recommend/"
failures: list[str] = []


# ------------------------------------------------------------------------------ plumbing


def django_env(database_url: str, redis_url: str, broker_url: str = "") -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "example_project.settings", "DJANGO_DEBUG": "0",
           "CACHE_KEY_PREFIX": f"rel{os.getpid()}", "PYTHONPATH": str(ROOT)}
    env.pop("CELERY_BROKER_URL", None)
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    return env


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          check=check, text=True, capture_output=True)


def database(server: str, name: str, size: dict) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        fresh = not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s",
                                 (name,)).fetchone()
        if fresh:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = django_env(f"{server}/{name}", "")
    manage(env, "migrate", "--noinput", "-v0")
    if fresh:
        manage(env, "seed_demo", "--users", str(size["users"]), "--businesses",
               str(size["businesses"]), "--interactions", str(size["interactions"]), "--quiet")
    manage(env, "rebuild_recommendations", "-v0")
    return f"{server}/{name}"


def prepare(env: dict) -> dict:
    """Tokens: a staff account, and users with interactions; a few business ids."""
    code = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from xo_recommender.models import Interaction, RecBusiness
User = get_user_model()
staff, _ = User.objects.get_or_create(username="reliability-staff",
                                      defaults={"is_staff": True})
ids = list(Interaction.objects.order_by("user_id").values_list("user_id", flat=True)
           .distinct()[:40])
users = [[u, Token.objects.get_or_create(user_id=u)[0].key] for u in ids]
businesses = list(RecBusiness.objects.filter(is_active=True).order_by("pk")
                  .values_list("pk", flat=True)[:40])
print(json.dumps({"staff": Token.objects.get_or_create(user=staff)[0].key,
                  "users": users, "businesses": businesses}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         text=True, capture_output=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def serve(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "example_project.wsgi", "-b", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "60", "--log-level", "critical",
         "--access-logfile", "/dev/null"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{API}health/", timeout=2)
            return proc
        except urllib.error.HTTPError:
            return proc
        except Exception:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("gunicorn did not start")


class Client:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, token: str | None = None, body: bytes | None = None,
             timeout: float = 60) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=headers)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, kind, raw = response.status, response.headers.get("Content-Type", ""), \
                    response.read()
        except urllib.error.HTTPError as error:
            status, kind, raw = error.code, error.headers.get("Content-Type", ""), error.read()
        except Exception as error:  # connection reset, timeout: counted as a failure
            return {"status": 0, "json": False, "ms": (time.perf_counter() - started) * 1000,
                    "body": None, "error": type(error).__name__}
        ms = (time.perf_counter() - started) * 1000
        is_json = kind.startswith("application/json")
        return {"status": status, "json": is_json, "ms": ms,
                "body": json.loads(raw) if is_json and raw else None}

    def get(self, path: str, token: str, **kw) -> dict:
        return self.call("GET", path, token, **kw)

    def post(self, path: str, token: str, payload, **kw) -> dict:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.call("POST", path, token, body, **kw)


def summary(name: str, results: list[dict], note: str = "", max_ms: float | None = None,
            allow_503: bool = True) -> dict:
    count = len(results)
    ok = sum(200 <= r["status"] < 300 for r in results)
    client = sum(400 <= r["status"] < 500 and r["json"] for r in results)
    unavailable = sum(r["status"] == 503 and r["json"] for r in results)
    other = sum((r["status"] >= 500 and not (r["status"] == 503 and r["json"]))
                or r["status"] == 0 for r in results)
    html = sum(r["status"] != 0 and not r["json"] for r in results)
    times = [r["ms"] for r in results] or [0.0]
    line = {"scenario": name, "n": count, "2xx": ok, "4xx": client, "503": unavailable,
            "other5xx": other, "nonjson": html, "p50": statistics.median(times),
            "max": max(times)}
    print(f"{name:<34} {count:>5} {ok:>5} {client:>5} {unavailable:>5} {other:>8} {html:>8} "
          f"{line['p50']:>8.1f} {line['max']:>8.1f}  {note}")
    if other or html:
        failures.append(f"{name}: {other} other 5xx / connection errors, {html} non-JSON")
    if not allow_503 and unavailable:
        failures.append(f"{name}: {unavailable} × 503 where the API should answer")
    if max_ms is not None and line["max"] > max_ms:
        failures.append(f"{name}: slowest request {line['max']:.0f} ms > {max_ms:.0f} ms")
    return line


def burst(client: Client, data: dict, n: int, threads: int = 8) -> list[dict]:
    """``n`` requests, mixed: recommendations (GET) and interactions (POST, own user)."""
    users, businesses = data["users"], data["businesses"]

    def one(i: int) -> dict:
        user_id, token = users[i % len(users)]
        if i % 4 == 3:
            return client.post(f"{API}interaction/", token, {
                "user_id": user_id, "business_id": businesses[i % len(businesses)],
                "interaction_type": "view"})
        return client.get(f"{API}{user_id}/", token)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


def counts(env: dict, user_id: int, business_ids: list[int]) -> dict:
    code = f"""
import json, django
django.setup()
from xo_recommender.models import Interaction
rows = Interaction.objects.filter(user_id={user_id}, business_id__in={business_ids!r},
                                  interaction_type="share")
print(json.dumps({{str(b): c for b, c in rows.values_list("business_id", "count")}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         text=True, capture_output=True).stdout
    return {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}


# ----------------------------------------------------------------------------- scenarios


def database_down(client, data, proxy, n):
    summary("baseline", burst(client, data, n), allow_503=False)
    proxy.close()
    line = summary("database down (refused, cut)", burst(client, data, n), max_ms=2000)
    if line["503"] != line["n"]:
        failures.append("database down: not every request answered 503 JSON")
    proxy.open()
    time.sleep(0.2)
    summary("database back", burst(client, data, n), allow_503=False)


def database_locked(client, data, direct_url, n):
    import psycopg

    with psycopg.connect(direct_url) as other:
        other.execute("LOCK TABLE xo_recommender_interaction IN ACCESS EXCLUSIVE MODE")
        results = burst(client, data, n, threads=4)
        other.rollback()
    line = summary("database locked (table lock)", results, max_ms=8000,
                   note="statement timeout 5 s")
    if line["2xx"] + line["503"] != line["n"]:
        failures.append("database locked: answers other than 2xx or 503 JSON")


def redis_dead(client, data, redis, n):
    redis.process.kill()
    redis.process.wait()
    summary("redis dead", burst(client, data, n), allow_503=False, max_ms=2000)
    restarted = OwnRedis.__new__(OwnRedis)
    restarted.port, restarted.dir = redis.port, redis.dir
    restarted.process = subprocess.Popen(
        ["redis-server", "--port", str(redis.port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", redis.dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return restarted


def redis_hung(client, data, redis, n):
    user_id, token = data["users"][0]
    time.sleep(5.5)  # any breaker opened by the previous scenario has closed
    first = client.get(f"{API}{user_id}/", token)
    client.get(f"{API}{user_id}/", token)  # cached now
    shown = [r["business_id"] for r in first["body"]["recommendations"]]
    redis.hang()
    results = burst(client, data, n)
    saved = client.post(f"{API}interaction/", token, {
        "user_id": user_id, "business_id": shown[0], "interaction_type": "save"})
    results.append(saved)
    results.append(client.get(f"{API}{user_id}/", token))
    summary("redis hung (SIGSTOP)", results, allow_503=False, max_ms=2000,
            note="every request ≤ 2 s")
    redis.resume()
    time.sleep(6)  # the breakers (5 s) close; missed invalidations are written
    after = [client.get(f"{API}{user_id}/", token) for _ in range(3)]
    stale = sum(shown[0] in [r["business_id"] for r in a["body"]["recommendations"]]
                for a in after if a["body"])
    summary("redis back", after, allow_503=False,
            note=f"stale answers listing the business saved during the hang: {stale}")
    if stale:
        failures.append(f"redis hung: {stale} stale answer(s) after recovery")


def broker_down(client, data, env_direct, n):
    summary("broker down: API", burst(client, data, n), allow_503=False)
    health = client.get(f"{API}health/", data["staff"])
    state = (health["body"] or {}).get("broker", {}).get("status")
    done = manage({**env_direct, "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"},
                  "rebuild_recommendations", "--async", check=False)
    lines = done.stderr.strip().splitlines()
    print(f"{'broker down: health / --async':<34} health {health['status']} broker={state}; "
          f"--async exit {done.returncode}, {len(lines)} line: {lines[0] if lines else ''}")
    if state != "down" or done.returncode != 1 or len(lines) != 1:
        failures.append("broker down: health or --async not as expected")


def bodies(client, data):
    user_id, token = data["users"][0]
    nested = client.post(f"{API}interaction/", token, b"[" * 5000 + b"]" * 5000)
    big = client.post(f"{API}interaction/", token, json.dumps({
        "user_id": user_id, "business_id": 1, "interaction_type": "view",
        "pad": "x" * 10 * 2**20}).encode())
    summary("bodies: nested 5000 deep, 10 MB", [nested, big],
            note=f"statuses {nested['status']}, {big['status']}", allow_503=False)
    if nested["status"] != 400 or big["status"] != 413:
        failures.append(f"bodies: {nested['status']} / {big['status']}, wanted 400 / 413")


def rebuild_killed(client, data, env_direct, n):
    code = """
import django, time
django.setup()
from xo_recommender.models import ModelVersion
print(ModelVersion.objects.filter(status="building").count())
"""

    def building() -> int:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_direct,
                             check=True, text=True, capture_output=True).stdout
        return int(out.strip().splitlines()[-1])

    proc = subprocess.Popen([sys.executable, "manage.py", "rebuild_recommendations"],
                            cwd=ROOT, env={**env_direct, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # half-way: it has created its version and is reading
        if "Reading" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    orphans = building()
    during = burst(client, data, n)
    again = manage(env_direct, "rebuild_recommendations", "-v0", check=False)
    left = building()
    summary("rebuild killed half-way", during, allow_503=False,
            note=f"building after kill: {orphans}; after the next rebuild: {left} "
            f"(exit {again.returncode})")
    if orphans != 1 or left != 0 or again.returncode != 0:
        failures.append("rebuild killed: orphan not cleaned up by the next rebuild")


def writers(client, data, env_direct, per_writer):
    user_id, token = data["users"][1]
    businesses = data["businesses"][:16]
    before = counts(env_direct, user_id, businesses)

    def write(business_id: int) -> list[dict]:
        return [client.post(f"{API}interaction/", token, {
            "user_id": user_id, "business_id": business_id, "interaction_type": "share"})
            for _ in range(per_writer)]

    for label, targets in (("one key", [businesses[0]] * 16), ("distinct keys", businesses)):
        start = counts(env_direct, user_id, businesses)
        with ThreadPoolExecutor(16) as pool:
            results = [r for batch in pool.map(write, targets) for r in batch]
        end = counts(env_direct, user_id, businesses)
        recorded = sum(end.get(b, 0) - start.get(b, 0) for b in set(targets))
        sent = sum(r["status"] == 201 for r in results)
        lost = sent - recorded
        summary(f"16 writers, {label}", results, allow_503=False,
                note=f"201s {sent}, counted {recorded}, rows lost {lost}")
        if lost:
            failures.append(f"16 writers, {label}: {lost} lost")
    del before


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario")
    parser.add_argument("--writes", type=int, default=50, help="POSTs per writer")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    size = {"users": 300, "businesses": 150, "interactions": 6000}
    if args.smoke:
        args.requests, args.writes = 40, 10
    direct = database(args.server, "xo_bench_reliability", size)
    host, port = direct.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port))
    proxy.open()
    proxied = direct.replace(f"@{host}:{port}/", f"@127.0.0.1:{proxy.port}/")
    redis = OwnRedis()
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    env = django_env(proxied, redis.url, dead_broker)
    env_direct = django_env(direct, redis.url)
    data = prepare(env_direct)
    http_port = free_port()
    server = serve(env, http_port)
    client = Client(http_port)
    for user_id, token in data["users"]:  # warm: the model in both workers, the cache
        client.get(f"{API}{user_id}/", token)
    print(f"Reliability: gunicorn 2 workers, PostgreSQL via a TCP proxy, own redis-server, "
          f"broker at a closed port; {args.requests} requests per scenario (8 threads)")
    print(f"{'scenario':<34} {'n':>5} {'2xx':>5} {'4xx':>5} {'503':>5} {'other5xx':>8} "
          f"{'nonJSON':>8} {'p50 ms':>8} {'max ms':>8}")
    try:
        database_down(client, data, proxy, args.requests)
        database_locked(client, data, direct, max(8, args.requests // 10))
        redis = redis_dead(client, data, redis, args.requests)
        redis_hung(client, data, redis, args.requests)
        broker_down(client, data, env_direct, args.requests)
        bodies(client, data)
        rebuild_killed(client, data, env_direct, args.requests)
        writers(client, data, env_direct, args.writes)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        redis.stop()
        proxy.close()
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        raise SystemExit(1)
    print("\nAll faults answered as expected: 0 × 5xx other than 503 JSON, 0 non-JSON, "
          "0 rows lost, hung cache ≤ 2 s, no stale answer after recovery.")


if __name__ == "__main__":
    main()
