"""Settings a README table promises, each shown doing what it says: DIVERSIFY as the
default of ``diversify``, CACHE_TIMEOUT as an entry's life, COLLABORATIVE reaching the
model a rebuild trains, ``make demo DEMO_PORT=…``, and the test preflight's message."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import ATL, UserFactory, coffee_and_books
from xo_recommender import artifacts, recommend_for
from xo_recommender.services import rebuild
from xo_recommender.services.ranking import recommendation_page

ROOT = Path(__file__).resolve().parent.parent


def configured(**changes):
    return override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, **changes})


@pytest.fixture
def cafes_and_shops(db):
    world = coffee_and_books()
    rebuild()
    return world


def slugs(results):
    return {r.business.categories.get().slug for r in results}


@pytest.mark.django_db
def test_diversify_setting_is_the_default_of_a_call_that_does_not_say(cafes_and_shops):
    user = UserFactory(interests=["coffee"], home_latitude=ATL[0], home_longitude=ATL[1])
    with configured(DIVERSIFY=False, DIVERSITY_LAMBDA=0.3):
        assert slugs(recommend_for(user, 2)) == {"coffee"}
    with configured(DIVERSIFY=True, DIVERSITY_LAMBDA=0.3):
        assert slugs(recommend_for(user, 2)) == {"coffee", "books"}
        assert slugs(recommend_for(user, 2, diversify=False)) == {"coffee"}  # a call wins


@pytest.mark.django_db
def test_cache_timeout_is_how_long_an_answer_stays_cached(cafes_and_shops):
    user = UserFactory(interests=["coffee"], home_latitude=ATL[0], home_longitude=ATL[1])
    with configured(CACHE_TIMEOUT=1):
        assert not recommendation_page(user, 3).cached
        assert recommendation_page(user, 3).cached
        time.sleep(1.6)
        assert not recommendation_page(user, 3).cached  # expired: computed again
    with configured(CACHE_TIMEOUT=300):
        assert not recommendation_page(user, 4).cached
        time.sleep(1.6)
        assert recommendation_page(user, 4).cached


@pytest.mark.django_db
def test_collaborative_keywords_reach_the_model_a_rebuild_trains(cafes_and_shops):
    def most_neighbours() -> int:
        _, model = artifacts.active_model()
        return int(model.collaborative.similarity_.getnnz(axis=1).max())

    assert most_neighbours() >= 2  # each of the three liked cafés has the other two
    with configured(COLLABORATIVE={"top_k": 1}):
        rebuild()
        assert most_neighbours() == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_serves_and_signs_in_on_demo_port():
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    dry = subprocess.run(["make", "-n", "demo", "DEMO_PORT=8123"], cwd=ROOT, env=env,
                         text=True, capture_output=True, check=True).stdout
    assert "runserver 127.0.0.1:8123" in dry
    assert "demo_accounts --base-url http://127.0.0.1:8123" in dry
    assert "8000" not in dry


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def preflight(**urls: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run([sys.executable, "-m", "tests.preflight"], cwd=ROOT, text=True,
                          capture_output=True, env={**env, **urls}, timeout=30)


def test_preflight_names_what_is_down_and_how_to_start_it():
    port = closed_port()
    down = preflight(DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/x",
                     REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert down.returncode == 1
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 2  # one clear line each, no traceback
    assert lines[0].startswith(f"PostgreSQL is not reachable at postgres://postgres@127.0.0.1:"
                               f"{port}/x. Start it: pg_ctlcluster")
    assert lines[1].startswith(f"Redis is not reachable at redis://127.0.0.1:{port}/0. "
                               "Start it: redis-server")


def test_preflight_is_silent_when_nothing_is_asked_or_all_is_up():
    assert preflight().returncode == 0  # SQLite and local memory: nothing to reach
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        up = preflight(DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/x")
    assert up.returncode == 0 and up.stderr == ""
