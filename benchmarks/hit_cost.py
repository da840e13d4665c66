"""What each part of a cache hit costs, measured against the serving floor.

Times, in one process and interleaved round by round (so machine load hits every variant
alike), requests through the whole Django + DRF stack with token authentication and the
read throttle on:

* **floor** — ``/bench/floor/``: a DRF view returning a fixed list from the cache;
* **hit** — ``GET api/recommend/{user_id}/`` answered from the cache, as shipped: active
  flags remembered for ``ACTIVE_CHECK_INTERVAL_MS`` and read again by a thread, the
  throttle counted in the answer's round trip, the JSON sent as stored when the ranking
  was computed, the query's validation remembered;
* one variant per design choice, each undoing only that choice:
  **interval 0** (a primary-key query on the host table on every hit), **flags read by
  hits** (``ACTIVE_CHECK_BACKGROUND = False``: no thread, the hits read them a slice at
  a time), **no active check** (``LIVE_ACTIVE_CHECK = False``: signals only),
  **throttle apart** (its own round trip), **rendered per hit** (no stored JSON: the
  page built and rendered by DRF on every hit), **DRF serializer** (that, through
  ``RecommendationsResponseSerializer``), **query serializer** (the query validated by
  its serializer on every request).

Prints each variant's median time per request (median of the rounds' medians) and its
ratio to the floor and to the hit.

    python benchmarks/hit_cost.py --database-url postgres://…/xo_bench_5000000
    python benchmarks/hit_cost.py --smoke     # the API benchmark's small database (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xo_bench_5000000"))
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
                       "DJANGO_DEBUG": "0", "CACHE_KEY_PREFIX": f"hitcost{os.getpid()}"})
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import override_settings
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from xo_recommender.api import serializers as s
    from xo_recommender.api import views
    from xo_recommender.models import Interaction

    ids = list(Interaction.objects.order_by("user_id").values_list("user_id", flat=True)
               .distinct()[:args.users])
    users = get_user_model().objects.in_bulk(ids)
    clients = []
    for user_id, user in users.items():
        client = APIClient()
        token = Token.objects.get_or_create(user=user)[0].key
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        clients.append((user_id, client))

    @contextmanager
    def patched(owner, name, value):
        before = getattr(owner, name)
        setattr(owner, name, value)
        try:
            yield
        finally:
            setattr(owner, name, before)

    def recommender(**changes):
        return override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, **changes})

    def unremembered(params):
        return views.validated(s.RecommendQuerySerializer, params)

    variants = {
        "floor": [],
        "hit": [],
        "hit, interval 0": [lambda: recommender(ACTIVE_CHECK_INTERVAL_MS=0)],
        "hit, flags read by hits": [lambda: recommender(ACTIVE_CHECK_BACKGROUND=False)],
        "hit, no active check": [lambda: recommender(LIVE_ACTIVE_CHECK=False)],
        "hit, throttle apart": [
            lambda: patched(views.RecommendationViewSet, "throttle_with_answer", False)],
        "hit, rendered per hit": [lambda: patched(s, "JSON_RENDERING", None)],
        "hit, DRF serializer": [lambda: patched(s, "JSON_RENDERING", None), lambda: patched(
            s, "recommendations_data",
            lambda page: s.RecommendationsResponseSerializer(page).data)],
        "hit, query serializer": [lambda: patched(views, "recommend_query", unremembered)],
    }

    def floor(user_id, client):
        return client.get("/bench/floor/")

    def hit(user_id, client):
        return client.get(f"/api/recommend/{user_id}/")

    def check(name, response):  # outside the timed call: parsing is the client's cost
        assert response.status_code == 200, response.content
        assert name == "floor" or json.loads(response.content)["cached"], response.content

    for user_id, client in clients:  # warm: model loaded, every answer cached
        client.get(f"/api/recommend/{user_id}/")
        floor(user_id, client)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, changes in variants.items():
            call = floor if name == "floor" else hit
            with ExitStack() as stack:
                for change in changes:
                    stack.enter_context(change())
                samples = []
                for user_id, client in clients:
                    started = time.perf_counter()
                    response = call(user_id, client)
                    samples.append((time.perf_counter() - started) * 1000)
                    check(name, response)
            times[name].append(statistics.median(samples))
    result = {name: statistics.median(values) for name, values in times.items()}
    print(f"Cache-hit cost in process (Django test client, token auth, read throttle on), "
          f"{len(clients)} users × {args.rounds} interleaved rounds, database "
          f"{args.database_url.rsplit('/', 1)[1]}")
    print(f"  {'variant':<24} {'ms/request':>10} {'× floor':>8} {'× hit':>7}")
    for name, ms in result.items():
        print(f"  {name:<24} {ms:10.3f} {ms / result['floor']:8.2f} "
              f"{ms / result['hit']:7.2f}")


if __name__ == "__main__":
    main()
