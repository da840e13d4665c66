"""What the live check costs a cache hit, measured against the serving floor.

A cached ranking is served only after its businesses' active flags are read afresh from
the host table (one primary-key query), so a business deactivated or deleted by any
means is never listed. This times,
in one process and interleaved round by round (so machine load hits every variant
alike), three requests through the whole Django + DRF stack with token authentication:

* **floor** — ``/bench/floor/``: a DRF view returning a fixed list from the cache;
* **hit** — ``GET api/recommend/{user_id}/`` answered from the cache, live check on;
* **hit, no live check** — the same with that query skipped (what a hit cost before the
  check: the reference for its price).

Prints the median per-request time of each (median of the rounds' medians) and the
ratios.

    python benchmarks/hit_cost.py --database-url postgres://…/xo_bench_500000
    python benchmarks/hit_cost.py --smoke     # the API benchmark's small database (CI)
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xo_bench_500000"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        from api_load import smoke_database

        args.database_url = smoke_database(args.database_url.rsplit("/", 1)[0])
        args.users, args.rounds = 20, 3
    os.environ.update({"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                       "DJANGO_SETTINGS_MODULE": "example_project.settings",
                       "CACHE_KEY_PREFIX": f"hitcost{os.getpid()}"})
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from xo_recommender.models import Interaction

    ranking = importlib.import_module("xo_recommender.services.ranking")
    ids = list(Interaction.objects.order_by("user_id").values_list("user_id", flat=True)
               .distinct()[:args.users])
    users = get_user_model().objects.in_bulk(ids)
    clients = []
    for user_id, user in users.items():
        client = APIClient()
        token = Token.objects.get_or_create(user=user)[0].key
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        clients.append((user_id, client))
    live = ranking._live

    def ids_only(ranked, limit, *, check=True):
        return [ranking.PageItem(row[0], row[4], round(row[1], 6), list(row[2]), row[5],
                                 row[3]) for row in ranked[:limit]]

    def floor(user_id, client):
        return client.get("/bench/floor/")

    def hit(user_id, client):
        response = client.get(f"/api/recommend/{user_id}/")
        assert response.status_code == 200 and response.json()["cached"], response.content
        return response

    for user_id, client in clients:  # warm: model loaded, every answer cached
        client.get(f"/api/recommend/{user_id}/")
        floor(user_id, client)
    times: dict[str, list[float]] = {"floor": [], "hit": [], "hit, no live check": []}
    for _ in range(args.rounds):
        for name in times:
            ranking._live = ids_only if name == "hit, no live check" else live
            call = floor if name == "floor" else hit
            samples = []
            for user_id, client in clients:
                started = time.perf_counter()
                call(user_id, client)
                samples.append((time.perf_counter() - started) * 1000)
            times[name].append(statistics.median(samples))
    ranking._live = live
    result = {name: statistics.median(values) for name, values in times.items()}
    print(f"Cache-hit cost in process (Django test client, token auth), {len(clients)} users "
          f"× {args.rounds} interleaved rounds, database {args.database_url.rsplit('/', 1)[1]}")
    for name, ms in result.items():
        print(f"  {name:<22} {ms:7.3f} ms per request (median)")
    base, checked = result["hit, no live check"], result["hit"]
    print(f"  live check adds {checked - base:.3f} ms ({checked / base - 1:+.0%} of a hit); "
          f"hit = {checked / result['floor']:.2f}× the floor "
          f"(without the check {base / result['floor']:.2f}×)")


if __name__ == "__main__":
    main()
