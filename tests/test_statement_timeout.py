"""A table held under lock by another session makes the API answer 503 JSON within the
statement timeout, instead of hanging until the web server kills the worker."""

import time

import psycopg
import pytest
from django.db import connection

from tests.factories import BusinessFactory, UserFactory
from tests.test_api import API, client_for, post
from xo_recommender.models import Interaction

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="statement_timeout is PostgreSQL's")]


@pytest.fixture
def interactions_locked():
    """Another session holds the interaction table in ACCESS EXCLUSIVE mode."""
    params = connection.get_connection_params()
    other = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"},
                            autocommit=False)
    other.execute(f"LOCK TABLE {Interaction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    yield
    other.rollback()
    other.close()


@pytest.mark.parametrize("outside_transaction", [
    False, pytest.param(True, marks=pytest.mark.django_db(transaction=True))])
def test_locked_table_is_503_json_within_the_timeout(settings, interactions_locked,
                                                     outside_transaction):
    # outside_transaction: as in production, no test transaction around the request
    assert connection.in_atomic_block is not outside_transaction
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "STATEMENT_TIMEOUT_MS": 300}
    user, business = UserFactory(), BusinessFactory()
    started = time.perf_counter()
    response = post(client_for(user), f"{API}interaction/",
                    {"user_id": user.pk, "business_id": business.pk, "interaction_type": "save"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert elapsed < 2.0


def test_the_timeout_is_local_to_the_call(settings):
    """The host's own queries after ours keep the database's setting."""
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "STATEMENT_TIMEOUT_MS": 1234}
    from xo_recommender.services._common import statement_timeout

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
        with statement_timeout():
            cursor.execute("SHOW statement_timeout")
            inside = cursor.fetchone()[0]
        cursor.execute("SHOW statement_timeout")
        after = cursor.fetchone()[0]
    assert inside == "1234ms"
    assert after == before != inside


def test_unused_block_sends_nothing(settings, django_assert_num_queries):
    from xo_recommender.services._common import statement_timeout

    with django_assert_num_queries(0), statement_timeout():
        pass


@pytest.mark.django_db(transaction=True)
def test_an_uncached_page_over_a_locked_history_is_503_within_the_timeout(settings):
    """As in production (no transaction around the request), the one-message history
    read keeps the bound, answers 503 JSON, and leaves the connection usable with the
    database's own setting. (Inside a transaction the read is an ordinary query under
    ``statement_timeout``; the test's own reads there would keep the lock away.)"""
    from xo_recommender import record_interaction
    from xo_recommender.services import rebuild

    assert not connection.in_atomic_block
    user, business = UserFactory(), BusinessFactory()
    record_interaction(user, business, "like")
    rebuild()
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "STATEMENT_TIMEOUT_MS": 300}
    params = connection.get_connection_params()
    other = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"},
                            autocommit=False)
    other.execute(f"LOCK TABLE {Interaction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    try:
        started = time.perf_counter()
        response = client_for(user).get(f"{API}{user.pk}/")
        elapsed = time.perf_counter() - started
    finally:
        other.rollback()
        other.close()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert elapsed < 2.0
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == before
    assert client_for(user).get(f"{API}{user.pk}/").status_code == 200


@pytest.mark.parametrize("outside_transaction", [
    False, pytest.param(True, marks=pytest.mark.django_db(transaction=True))])
def test_a_users_interactions_over_a_locked_table_are_503_within_the_timeout(
        settings, interactions_locked, outside_transaction):
    """The list's count and page are bounded like every other read (they once ran
    outside the bound and waited for the lock as long as it was held)."""
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "STATEMENT_TIMEOUT_MS": 300}
    user = UserFactory()
    started = time.perf_counter()
    response = client_for(user).get(f"{API}user/{user.pk}/interactions/")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert time.perf_counter() - started < 2.0
