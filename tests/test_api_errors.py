"""Every API error is JSON: database faults (authentication included) → 503, bodies nested
too deep → 400, too large → 413, unknown paths → 404, server bugs → a logged 500; and the
original service's own sync payloads are accepted."""

import json
import logging

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import BusinessFactory, UserFactory
from tests.test_api import API, client_for, post
from xo_recommender import services


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def assert_json(response, status, code=None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    if code is not None:
        assert response.json()["code"] == code


@pytest.fixture
def database_down(monkeypatch):
    """From now on every query fails as if the server had gone (the fault injection)."""
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused (injected)")

    def start():
        monkeypatch.setattr(CursorWrapper, "execute", refuse)
        monkeypatch.setattr(CursorWrapper, "executemany", refuse)
    return start


@pytest.mark.django_db
def test_database_down_during_token_authentication_is_503_json(database_down, caplog):
    user = UserFactory()
    client = token_client(user)
    database_down()
    with caplog.at_level(logging.ERROR, logger="xo_recommender.api"):
        response = client.get(f"{API}{user.pk}/")
    assert_json(response, 503, "database_unavailable")
    assert response["Retry-After"] == "5"
    assert "refused" not in response.content.decode()  # no exception text to clients
    assert any("Database unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
@pytest.mark.parametrize("method,path,body", [
    ("get", "{user}/", None),
    ("post", "interaction/", {"user_id": "{user}", "business_id": 1,
                              "interaction_type": "view"}),
    ("get", "user/{user}/interactions/", None),
    ("get", "popular/", None),
])
def test_database_down_in_each_endpoint_is_503_json(database_down, method, path, body):
    user = UserFactory()
    client = client_for(user)  # authenticated without the database
    database_down()
    url = API + path.format(user=user.pk)
    if body is None:
        response = client.get(url)
    else:
        body = {k: user.pk if v == "{user}" else v for k, v in body.items()}
        response = post(client, url, body)
    assert_json(response, 503, "database_unavailable")


@pytest.mark.django_db
def test_nested_body_is_400_json():
    user = UserFactory()
    body = "[" * 5000 + "]" * 5000
    response = client_for(user).post(f"{API}interaction/", body,
                                     content_type="application/json")
    assert_json(response, 400, None)
    assert "nested" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("size", [300 * 1024, 10 * 2**20])
def test_oversized_body_is_413_json(size):
    user = UserFactory()
    body = json.dumps({"user_id": user.pk, "business_id": 1, "interaction_type": "view",
                       "pad": "x" * size})
    response = client_for(user).post(f"{API}interaction/", body,
                                     content_type="application/json")
    assert_json(response, 413)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["-1/", "nope/", "user/abc/interactions/", "1/2/3/"])
def test_unknown_api_paths_are_404_json(path):
    response = client_for(UserFactory()).get(API + path)
    assert_json(response, 404, "not_found")
    client = APIClient(enforce_csrf_checks=True)  # a POST without a CSRF token, too
    assert_json(client.post(API + path, "{}", content_type="application/json"), 404)


@pytest.mark.django_db
def test_a_server_fault_is_a_logged_500_not_a_400(monkeypatch, caplog):
    user = UserFactory()

    def broken(*args, **kwargs):
        raise ValueError("index 7 is out of bounds for the engine's item table")

    monkeypatch.setattr(services, "recommendation_page", broken)
    with caplog.at_level(logging.ERROR, logger="xo_recommender.api"):
        response = client_for(user).get(f"{API}{user.pk}/")
    assert_json(response, 500, "internal_error")
    assert "out of bounds" not in response.content.decode()
    assert any(r.exc_info and "out of bounds" in str(r.exc_info[1]) for r in caplog.records)


# ------------------------------------------------------------------ the seed's payloads

@pytest.mark.django_db
def test_seed_sync_user_payload_is_accepted():
    staff, user = UserFactory(is_staff=True), UserFactory()
    body = {"id": user.pk, "username": "ada", "email": "ada@example.com",
            "interests": ["coffee", "books"], "location": "Atlanta, GA"}
    response = post(client_for(staff), f"{API}sync/user/", body)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "synced", "user_id": user.pk}


@pytest.mark.django_db
def test_seed_sync_business_payload_is_accepted():
    staff, business = UserFactory(is_staff=True), BusinessFactory()
    body = {"id": business.pk, "name": "Sweet Auburn Bakery", "category": "bakery",
            "tags": ["black-owned"], "latitude": 33.75, "longitude": -84.37, "rating": 4.6}
    response = post(client_for(staff), f"{API}sync/business/", body)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "synced", "business_id": business.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("body,status", [
    ({"id": 10**9, "username": "x"}, 404),
    ({"id": 1, "user_id": 2}, 400),
    ({"id": 1, "user_id": 1}, 400),  # exactly one of the two names
    ({"username": "x"}, 400),
    ({"id": "x"}, 400),
])
def test_seed_sync_user_errors(body, status):
    response = post(client_for(UserFactory(is_staff=True)), f"{API}sync/user/", body)
    assert_json(response, status)


@pytest.mark.django_db
def test_health_probes_the_broker_at_most_every_few_seconds(monkeypatch):
    import importlib

    from celery import current_app

    health = importlib.import_module("xo_recommender.services.health")
    probes = []
    monkeypatch.setattr(health, "_probe_broker", lambda: probes.append(1))
    conf = current_app.conf
    saved = (conf.broker_url, conf.task_always_eager)
    conf.broker_url, conf.task_always_eager = "amqp://127.0.0.1:5672//", False  # never dialled
    try:
        for _ in range(5):
            response = APIClient().get(f"{API}health/")
            assert response.status_code == 200 and response.json()["broker"] == {"status": "up"}
        assert len(probes) == 1
        monkeypatch.setattr(health, "BROKER_PROBE_SECONDS", 0)
        APIClient().get(f"{API}health/")
        assert len(probes) == 2
    finally:
        conf.broker_url, conf.task_always_eager = saved


@pytest.mark.django_db
def test_health_says_inline_without_a_broker_and_probes_nothing(monkeypatch, settings):
    import importlib

    health = importlib.import_module("xo_recommender.services.health")
    health.forget_broker_probe()
    probes = []
    monkeypatch.setattr(health, "_probe_broker", lambda: probes.append(1))
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER,
                               "HEALTH_REQUIRED": ["database", "broker"]}
    response = APIClient().get(f"{API}health/")  # the test settings run tasks eagerly
    # inline is working (tasks run where they are sent), so a required broker still answers
    assert response.status_code == 200 and response.json()["broker"] == {"status": "inline"}
    assert probes == []


@pytest.mark.django_db
def test_health_writes_nothing_to_the_cache(django_assert_num_queries):
    from django.core.cache import caches

    from xo_recommender import cache

    before = caches["default"].get(f"{cache.site_prefix()}:health")
    APIClient().get(f"{API}health/")
    assert caches["default"].get(f"{cache.site_prefix()}:health") is before is None


@pytest.mark.django_db
def test_health_answers_a_caller_with_a_stale_token_as_anyone():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get(f"{API}health/")
    assert response.status_code == 200
    assert "latency_ms" not in response.json()["database"]  # anonymous: statuses only
    assert client.get(f"{API}me/").status_code == 401  # elsewhere the token still fails


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "accept", "status"), [
    ("get", "docs/?format=json", None, 404),
    ("get", "redoc/?format=json", None, 404),
    ("get", "schema/?format=bogus", None, 404),
    ("post", "schema/", None, 405),
    ("options", "docs/", None, 405),
    ("options", "redoc/", None, 405),
    ("get", "?format=xml", None, 404),
])
def test_errors_of_pages_that_are_not_json_are_json(method, path, accept, status):
    """The schema (YAML) and the docs pages (HTML): their errors are JSON all the same."""
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = getattr(APIClient(), method)(f"{API}{path}", **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json() or "code" in response.json()
