"""The REST API under /api/recommend/: every endpoint for anonymous callers, the owner,
another user and service accounts; the original service's JSON shapes; errors by field;
the OpenAPI schema."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.core.management import call_command
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APIRequestFactory

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import cache as rec_cache
from xo_recommender import record_interaction
from xo_recommender.api.permissions import RecommenderRateThrottle
from xo_recommender.models import Interaction
from xo_recommender.services import rebuild

API = "/api/recommend/"
ATL = (33.749, -84.388)

RECOMMENDATION_KEYS = {"user_id", "recommendations", "model_version", "cached"}
ITEM_KEYS = {"business_id", "name", "score", "reasons", "categories", "distance_km"}
HEALTH_KEYS = {"status", "database", "cache", "broker", "model_version", "serving"}
INTERACTION_KEYS = {"business_id", "interaction_type", "weight", "count", "first_seen",
                    "last_seen"}


@pytest.fixture
def world(db):
    coffee = CategoryFactory(name="Coffee", slug="coffee")
    books = CategoryFactory(name="Books", slug="books")
    cafes = [BusinessFactory(name=f"Cafe {i}", categories=[coffee], latitude=ATL[0] + i / 100,
                             longitude=ATL[1]) for i in range(4)]
    shops = [BusinessFactory(name=f"Bookshop {i}", categories=[books],
                             latitude=ATL[0] - i / 100, longitude=ATL[1]) for i in range(4)]
    coffee_people = [UserFactory(interests=["coffee"]) for _ in range(3)]
    book_people = [UserFactory(interests=["books"]) for _ in range(3)]
    for u in coffee_people:
        for b in cafes[:3]:
            record_interaction(u, b, "like")
    for u in book_people:
        for b in shops[:3]:
            record_interaction(u, b, "save")
    return {"cafes": cafes, "shops": shops, "owner": coffee_people[0],
            "other": book_people[0], "coffee": coffee_people, "books": book_people}


@pytest.fixture
def built(world):
    rebuild()
    return world


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def syncer(db):
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(
        codename="sync", content_type__app_label="xo_recommender"))
    return user


def client_for(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def post(client, url, body, **kwargs):
    return client.post(url, json.dumps(body), content_type="application/json", **kwargs)


def stored():
    return sorted(Interaction.objects.values_list(
        "user_id", "business_id", "interaction_type", "weight", "count"))


# ------------------------------------------------------------------------ recommendations


@pytest.mark.django_db
def test_recommend_owner_gets_the_original_payload(built):
    owner = built["owner"]
    response = client_for(owner).get(f"{API}{owner.pk}/", {"max_results": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == RECOMMENDATION_KEYS
    assert body["user_id"] == owner.pk and body["cached"] is False
    assert len(body["recommendations"]) == 3
    assert all(set(item) == ITEM_KEYS for item in body["recommendations"])
    assert body["recommendations"][0]["reasons"]
    again = client_for(owner).get(f"{API}{owner.pk}/", {"max_results": 3}).json()
    assert again["cached"] is True
    assert again["recommendations"] == body["recommendations"]


@pytest.mark.django_db
def test_recommend_me_limit_offset_category_near_and_diversify(built):
    owner = built["owner"]
    client = client_for(owner)
    me = client.get(f"{API}me/", {"limit": 2}).json()
    assert me["user_id"] == owner.pk and len(me["recommendations"]) == 2
    second = client.get(f"{API}me/", {"limit": 2, "offset": 2}).json()["recommendations"]
    assert not {r["business_id"] for r in second} & {
        r["business_id"] for r in me["recommendations"]}
    books = client.get(f"{API}me/", {"category": "Books", "limit": 10}).json()
    assert books["recommendations"]
    assert all(r["categories"] == ["Books"] for r in books["recommendations"])
    near = client.get(f"{API}me/", {"lat": ATL[0], "lng": ATL[1], "radius_km": 50,
                                    "diversify": "true"})
    assert near.status_code == 200
    assert all(r["distance_km"] is not None and r["distance_km"] < 50
               for r in near.json()["recommendations"])
    same = client.get(f"{API}me/", {"max_results": 2, "limit": 2})
    assert same.status_code == 200


@pytest.mark.django_db
def test_recommend_access(built, staff, syncer):
    owner, other = built["owner"], built["other"]
    url = f"{API}{owner.pk}/"
    assert client_for().get(url).status_code == 401
    assert client_for().get(f"{API}me/").status_code == 401
    denied = client_for(other).get(url)
    assert denied.status_code == 403 and "detail" in denied.json()
    assert client_for(other).get(f"{API}{10**9}/").status_code == 403  # no existence leak
    assert client_for(staff).get(url).json()["user_id"] == owner.pk
    assert client_for(syncer).get(url).json()["user_id"] == owner.pk


@pytest.mark.django_db
def test_recommend_unknown_and_inactive_users_are_404(built, staff):
    unknown = client_for(staff).get(f"{API}{10**9}/")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_user"
    assert client_for(staff).get(f"{API}{2**70}/").status_code == 404
    assert client_for(staff).get(f"{API}abc/").status_code == 404  # no such route
    gone = UserFactory(is_active=False)
    inactive = client_for(staff).get(f"{API}{gone.pk}/")
    assert inactive.status_code == 404 and inactive.json()["code"] == "inactive_user"


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field"), [
    ({"max_results": 0}, "max_results"),
    ({"max_results": "ten"}, "max_results"),
    ({"max_results": 101}, "max_results"),
    ({"max_results": 2.5}, "max_results"),
    ({"limit": -1}, "limit"),
    ({"limit": 1000}, "limit"),
    ({"limit": 3, "max_results": 4}, "limit"),
    ({"offset": -1}, "offset"),
    ({"offset": 995}, "offset"),
    ({"offset": "x"}, "offset"),
    ({"lat": 91, "lng": 0}, "lat"),
    ({"lat": "nan", "lng": 0}, "lat"),
    ({"lat": 10}, "lng"),
    ({"lng": 10}, "lat"),
    ({"lat": 0, "lng": 181}, "lng"),
    ({"lat": 0, "lng": "inf"}, "lng"),
    ({"radius_km": -1}, "radius_km"),
    ({"radius_km": "Infinity"}, "radius_km"),
    ({"diversify": "perhaps"}, "diversify"),
    ({"category": "x" * 201}, "category"),
    ({"category": "caf\x00e"}, "category"),
])
def test_recommend_bad_query_is_400_naming_the_field(built, query, field):
    response = client_for(built["owner"]).get(f"{API}me/", query)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_radius_without_any_location_is_400_naming_radius(built):
    nowhere = UserFactory(home_latitude=None, home_longitude=None)
    response = client_for(nowhere).get(f"{API}me/", {"radius_km": 5})
    assert response.status_code == 400
    assert "radius_km" in response.json()


@pytest.mark.django_db
def test_model_not_ready_is_503_saying_what_to_run(world):
    owner = world["owner"]
    response = client_for(owner).get(f"{API}me/")
    assert response.status_code == 503
    assert response.json()["code"] == "model_not_ready"
    assert "rebuild_recommendations" in response.json()["detail"]
    business = world["cafes"][0]
    assert client_for(owner).get(f"{API}businesses/{business.pk}/similar/").status_code == 503
    assert client_for(owner).get(f"{API}popular/").status_code == 503


@pytest.mark.django_db
def test_recommend_costs_a_fixed_number_of_queries(built, django_assert_max_num_queries):
    owner = built["owner"]
    client = client_for(owner)
    client.get(f"{API}me/", {"limit": 2})  # loads the model into this process
    # the user's row, the active version, their interactions, the page's businesses
    with django_assert_max_num_queries(4):
        response = client.get(f"{API}me/", {"limit": 10})
    assert response.json()["cached"] is False
    # the active check of the page's businesses, and the active version if its TTL ran out
    with django_assert_max_num_queries(2):
        assert client.get(f"{API}me/", {"limit": 10}).json()["cached"] is True
    # the user exists, the count, the page
    with django_assert_max_num_queries(3):
        assert client.get(f"{API}user/{owner.pk}/interactions/").status_code == 200


@pytest.mark.django_db
def test_a_recorded_interaction_changes_the_next_answer(
        built, django_capture_on_commit_callbacks):
    owner = built["owner"]
    client = client_for(owner)
    before = client.get(f"{API}me/").json()
    assert client.get(f"{API}me/").json()["cached"] is True
    with django_capture_on_commit_callbacks(execute=True):  # the cache is bumped on commit
        post(client, f"{API}interaction/", {"user_id": owner.pk,
                                            "business_id": built["shops"][0].pk,
                                            "interaction_type": "save"})
    after = client.get(f"{API}me/").json()
    assert after["cached"] is False
    assert after["recommendations"] != before["recommendations"]


# ---------------------------------------------------------------------------------- health


@pytest.mark.django_db
def test_health_is_public_and_says_503_when_unhealthy(world, monkeypatch):
    response = client_for().get(f"{API}health/")
    assert response.status_code == 200
    assert set(response.json()) == HEALTH_KEYS
    assert response.json()["database"]["status"] == "up"
    down = {"status": "unavailable", "database": {"status": "down", "latency_ms": 1.0},
            "cache": {"status": "up", "latency_ms": 0.1},
            "broker": {"status": "up", "latency_ms": 0.1}, "model_version": None}
    monkeypatch.setattr("xo_recommender.services.health", lambda: (False, down))
    response = client_for().get(f"{API}health/")
    assert response.status_code == 503
    assert response.json() == {  # anonymous: statuses only
        "status": "unavailable", "database": {"status": "down"}, "cache": {"status": "up"},
        "broker": {"status": "up"}, "model_version": None}
    response = client_for(UserFactory(is_staff=True)).get(f"{API}health/")
    assert response.status_code == 503 and response.json() == down  # staff: details


# ------------------------------------------------------------------------------------ sync


@pytest.mark.django_db
def test_sync_user_and_business(world, staff, syncer):
    owner, business = world["owner"], world["cafes"][0]
    body = {"user_id": owner.pk, "interests": ["jazz"], "location": [1, 2], "name": "A"}
    assert post(client_for(), f"{API}sync/user/", body).status_code == 401
    assert post(client_for(owner), f"{API}sync/user/", body).status_code == 403
    for service in (staff, syncer):
        response = post(client_for(service), f"{API}sync/user/", body)
        assert response.status_code == 200
        assert response.json() == {"status": "synced", "user_id": owner.pk}
        response = post(client_for(service), f"{API}sync/business/",
                        {"business_id": business.pk, "name": "Renamed"})
        assert response.json() == {"status": "synced", "business_id": business.pk}
    assert post(client_for(owner), f"{API}sync/business/",
                {"business_id": business.pk}).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "body", "status", "field"), [
    ("sync/user/", {"user_id": 10**9}, 404, "detail"),
    ("sync/user/", {}, 400, "user_id"),
    ("sync/user/", {"user_id": "me"}, 400, "user_id"),
    ("sync/user/", {"user_id": 0}, 400, "user_id"),
    ("sync/user/", [1], 400, "non_field_errors"),
    ("sync/business/", {"business_id": 10**9}, 404, "detail"),
    ("sync/business/", {"business_id": None}, 400, "business_id"),
    ("sync/business/", {"business_id": 2**63}, 400, "business_id"),
])
def test_sync_errors(world, staff, url, body, status, field):
    response = post(client_for(staff), API + url, body)
    assert response.status_code == status
    assert field in response.json()


@pytest.mark.django_db
def test_sync_needs_json(world, staff):
    response = client_for(staff).post(f"{API}sync/user/", {"user_id": world["owner"].pk})
    assert response.status_code == 415  # multipart form
    response = client_for(staff).post(f"{API}sync/user/", "user_id=1",
                                      content_type="text/plain")
    assert response.status_code == 415


# ----------------------------------------------------------------------------- interaction


@pytest.mark.django_db
def test_owner_records_an_interaction(world):
    owner, shop = world["owner"], world["shops"][3]
    response = post(client_for(owner), f"{API}interaction/",
                    {"user_id": owner.pk, "business_id": shop.pk, "interaction_type": "view"})
    assert response.status_code == 201
    assert response.json() == {"status": "recorded"}
    row = Interaction.objects.get(user_id=owner.pk, business_id=shop.pk)
    assert (row.interaction_type, row.weight, row.count) == ("view", 1.0, 1)
    post(client_for(owner), f"{API}interaction/", {"user_id": owner.pk, "business_id": shop.pk,
                                                   "interaction_type": "view", "weight": 2.5})
    row.refresh_from_db()
    assert (row.weight, row.count) == (2.5, 2)
    body = {"business_id": shop.pk, "interaction_type": "view", "count": 5}  # as in Python
    assert post(client_for(owner), f"{API}interaction/", body).status_code == 201
    row.refresh_from_db()
    assert row.count == 7
    for bad in (0, -1, 10**7, "many", 2.5):
        answer = post(client_for(owner), f"{API}interaction/", {**body, "count": bad})
        assert answer.status_code == 400 and "count" in answer.json()
    row.refresh_from_db()
    assert row.count == 7


@pytest.mark.django_db
def test_interaction_access(world, staff, syncer):
    owner, other, shop = world["owner"], world["other"], world["shops"][3]
    body = {"user_id": other.pk, "business_id": shop.pk, "interaction_type": "like"}
    before = stored()
    assert post(client_for(), f"{API}interaction/", body).status_code == 401
    assert post(client_for(owner), f"{API}interaction/", body).status_code == 403
    mixed = [{**body, "user_id": owner.pk}, body]
    assert post(client_for(owner), f"{API}interaction/", mixed).status_code == 403
    assert stored() == before
    assert post(client_for(staff), f"{API}interaction/", body).status_code == 201
    assert post(client_for(syncer), f"{API}interaction/", body).status_code == 201
    assert Interaction.objects.get(user_id=other.pk, business_id=shop.pk).count == 2


@pytest.mark.django_db
def test_a_batch_is_recorded_at_once_and_bounded(world, staff):
    owner = world["owner"]
    batch = [{"user_id": owner.pk, "business_id": b.pk, "interaction_type": "view"}
             for b in world["shops"]]
    response = post(client_for(owner), f"{API}interaction/", batch)
    assert response.status_code == 201 and response.json() == {"status": "recorded"}
    assert Interaction.objects.filter(user_id=owner.pk, interaction_type="view").count() == 4

    before = stored()
    with override_settings(XO_RECOMMENDER={**_configured(), "MAX_BATCH": 3}):
        response = post(client_for(owner), f"{API}interaction/", batch)
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    empty = post(client_for(owner), f"{API}interaction/", [])
    assert empty.status_code == 400 and "non_field_errors" in empty.json()
    bad_last = [*batch[:3], {**batch[3], "weight": -1}]
    response = post(client_for(owner), f"{API}interaction/", bad_last)
    assert response.status_code == 400
    # errors keyed by the index of each bad item, then by field
    assert response.json() == {
        "3": {"weight": ["Ensure this value is greater than or equal to 0."]}}
    unknown_last = [*batch[:3], {**batch[3], "business_id": 10**9}]
    response = post(client_for(staff), f"{API}interaction/", unknown_last)
    assert response.status_code == 404 and "business_id" in response.json()
    assert response.json()["code"] == "unknown_business"
    assert stored() == before  # nothing of a rejected batch was written


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "status", "field"), [
    ({"interaction_type": "stare"}, 400, "interaction_type"),
    ({"interaction_type": None}, 400, "interaction_type"),
    ({"interaction_type": ""}, 400, "interaction_type"),
    ({"weight": -0.5}, 400, "weight"),
    ({"weight": 1e7}, 400, "weight"),
    ({"weight": "NaN"}, 400, "weight"),
    ({"weight": "inf"}, 400, "weight"),
    ({"weight": True}, 400, "weight"),
    ({"weight": "heavy"}, 400, "weight"),
    ({"user_id": None}, 400, "user_id"),
    ({"user_id": "abc"}, 400, "user_id"),
    ({"user_id": 1.5}, 400, "user_id"),
    ({"business_id": -3}, 400, "business_id"),
    ({"business_id": [1]}, 400, "business_id"),
    ({"business_id": 10**9}, 404, "business_id"),
])
def test_bad_interaction_is_rejected_naming_the_field(world, staff, change, status, field):
    body = {"user_id": world["owner"].pk, "business_id": world["shops"][3].pk,
            "interaction_type": "view", **change}
    before = stored()
    response = post(client_for(staff), f"{API}interaction/", body)
    assert response.status_code == status
    assert field in response.json()
    assert stored() == before


@pytest.mark.django_db
def test_an_interaction_without_user_id_is_the_signed_in_users(world, staff):
    """The owner records their own events without naming themself; a service account
    that leaves the user out records for itself too, never for somebody else."""
    owner, shop = world["owner"], world["shops"][3]
    body = {"business_id": shop.pk, "interaction_type": "save"}
    assert post(client_for(owner), f"{API}interaction/", body).status_code == 201
    assert post(client_for(owner), f"{API}interaction/",
                [body, {**body, "interaction_type": "like"}]).status_code == 201
    assert sorted(Interaction.objects.filter(business_id=shop.pk).values_list(
        "user_id", "interaction_type", "count")) == [(owner.pk, "like", 1),
                                                     (owner.pk, "save", 2)]
    assert post(client_for(staff), f"{API}interaction/", body).status_code == 201
    assert Interaction.objects.get(user_id=staff.pk, business_id=shop.pk).count == 1
    assert post(client_for(), f"{API}interaction/", body).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["business_id", "interaction_type"])
def test_missing_interaction_field_is_400(world, missing):
    owner = world["owner"]
    body = {"user_id": owner.pk, "business_id": world["shops"][3].pk, "interaction_type": "view"}
    del body[missing]
    response = post(client_for(owner), f"{API}interaction/", body)
    assert response.status_code == 400 and missing in response.json()


@pytest.mark.django_db
def test_unknown_user_interaction_is_404_for_a_service(world, staff):
    body = {"user_id": 10**9, "business_id": world["shops"][0].pk, "interaction_type": "view"}
    response = post(client_for(staff), f"{API}interaction/", body)
    assert response.status_code == 404 and "user_id" in response.json()
    assert response.json()["code"] == "unknown_user"


@pytest.mark.django_db
def test_interaction_wrong_content_type_or_broken_json(world):
    owner = world["owner"]
    client = client_for(owner)
    assert client.post(f"{API}interaction/", {"user_id": owner.pk}).status_code == 415
    assert client.post(f"{API}interaction/", "<x/>",
                       content_type="application/xml").status_code == 415
    broken = client.post(f"{API}interaction/", "{not json", content_type="application/json")
    assert broken.status_code == 400 and "detail" in broken.json()
    nan = client.post(f"{API}interaction/", '{"user_id": 1, "weight": NaN}',
                      content_type="application/json")
    assert nan.status_code == 400
    assert post(client, f"{API}interaction/", "a string").status_code == 400
    assert client.get(f"{API}interaction/").status_code == 405


# ------------------------------------------------------------------------- cache and history


@pytest.mark.django_db
def test_cache_clear(built, staff, syncer):
    owner = built["owner"]
    url = f"{API}cache/clear/{owner.pk}/"
    assert client_for().post(url).status_code == 401
    assert client_for(owner).post(url).status_code == 403
    client_for(owner).get(f"{API}me/")
    assert client_for(owner).get(f"{API}me/").json()["cached"] is True
    for service in (staff, syncer):
        response = client_for(service).post(url)
        assert response.status_code == 200
        assert response.json() == {"status": "cleared", "user_id": owner.pk}
    assert client_for(owner).get(f"{API}me/").json()["cached"] is False
    assert client_for(staff).post(f"{API}cache/clear/{2**70}/").status_code == 404
    assert client_for(staff).post(f"{API}cache/clear/{10**9}/").status_code == 404


@pytest.mark.django_db
def test_user_interactions_are_paginated_and_private(world, staff, syncer):
    owner, other = world["owner"], world["other"]
    url = f"{API}user/{owner.pk}/interactions/"
    assert client_for().get(url).status_code == 401
    assert client_for(other).get(url).status_code == 403
    response = client_for(owner).get(url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert all(set(row) == INTERACTION_KEYS for row in body["results"])
    assert {row["business_id"] for row in body["results"]} == {
        c.pk for c in world["cafes"][:3]}
    page = client_for(staff).get(url, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert client_for(syncer).get(url, {"page": 2, "page_size": 2}).json()["count"] == 3
    assert client_for(owner).get(url, {"page": 9}).status_code == 404
    assert client_for(staff).get(f"{API}user/{10**9}/interactions/").status_code == 404


# --------------------------------------------------------------------- similar and popular


@pytest.mark.django_db
def test_similar_businesses(built):
    owner, cafe = built["owner"], built["cafes"][0]
    url = f"{API}businesses/{cafe.pk}/similar/"
    assert client_for().get(url).status_code == 401
    response = client_for(owner).get(url, {"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"business_id", "model_version", "results"}
    assert body["business_id"] == cafe.pk and len(body["results"]) <= 2
    assert all(set(item) == ITEM_KEYS for item in body["results"])
    assert cafe.pk not in {item["business_id"] for item in body["results"]}
    assert client_for(owner).get(f"{API}businesses/{10**9}/similar/").status_code == 404
    bad = client_for(owner).get(url, {"limit": 0})
    assert bad.status_code == 400 and "limit" in bad.json()


@pytest.mark.django_db
def test_popular_businesses(built):
    owner = built["owner"]
    assert client_for().get(f"{API}popular/").status_code == 401
    response = client_for(owner).get(f"{API}popular/", {"limit": 3})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"model_version", "results"} and len(body["results"]) == 3
    books = client_for(owner).get(f"{API}popular/", {"category": "Books"}).json()["results"]
    assert books and all(item["categories"] == ["Books"] for item in books)
    near = client_for(owner).get(f"{API}popular/", {"lat": ATL[0], "lng": ATL[1],
                                                    "radius_km": 100}).json()["results"]
    assert near and all(item["distance_km"] < 100 for item in near)
    for query, field in (({"radius_km": 3}, "radius_km"), ({"lat": 3}, "lng"),
                         ({"limit": "many"}, "limit")):
        response = client_for(owner).get(f"{API}popular/", query)
        assert response.status_code == 400 and field in response.json()


# ------------------------------------------------------------------- auth, throttle, schema


@pytest.mark.django_db
def test_token_authentication(built):
    owner = built["owner"]
    token = Token.objects.create(user=owner)
    client = APIClient()
    assert client.get(f"{API}me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(f"{API}me/").json()["user_id"] == owner.pk
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert client.get(f"{API}me/").status_code == 401


@pytest.mark.django_db
def test_read_and_write_scopes_are_throttled_separately(built, settings):
    owner = built["owner"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "xo_recommender_read": "2/min", "xo_recommender_write": "1/min"}}
    client = client_for(owner)
    assert [client.get(f"{API}me/").status_code for _ in range(3)] == [200, 200, 429]
    body = {"user_id": owner.pk, "business_id": built["shops"][3].pk, "interaction_type": "view"}
    assert [post(client, f"{API}interaction/", body).status_code for _ in range(2)] == [201, 429]
    assert client_for().get(f"{API}health/").status_code == 200  # health is not throttled


@pytest.mark.django_db
def test_two_sites_sharing_one_cache_count_their_clients_apart(built, settings, monkeypatch):
    """Account 1 of one site and account 1 of another (same Redis database, same
    KEY_PREFIX, another database name) each have the whole rate."""
    from django.db import connections

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "xo_recommender_read": "2/min"}}
    client = client_for(built["owner"])
    assert [client.get(f"{API}me/").status_code for _ in range(2)] == [200, 200]
    monkeypatch.setitem(connections["default"].settings_dict, "NAME", "another_site")
    throttle = RecommenderRateThrottle()
    throttle.scope = "xo_recommender_read"
    request = APIRequestFactory().get(f"{API}me/")
    request.user = built["owner"]
    key = throttle.get_cache_key(request, None)
    assert key.startswith(rec_cache.site_prefix() + ":throttle_xo_recommender_read_")
    assert rec_cache.count_window(key, 60, cache=caches["default"]) == 1  # its own count
    monkeypatch.undo()
    assert client.get(f"{API}me/").status_code == 429  # this site's third in the window


@pytest.mark.django_db
def test_unconfigured_scopes_are_not_throttled(built, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    client = client_for(built["owner"])
    assert {client.get(f"{API}me/").status_code for _ in range(3)} == {200}


@pytest.mark.django_db
def test_schema_endpoint_is_openapi_3_of_this_app(client):
    response = client.get(f"{API}schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    assert f"{API}{{user_id}}/" in paths and f"{API}interaction/" in paths
    assert all(p.startswith(API) for p in paths)
    assert f"{API}schema/" not in paths


@pytest.mark.django_db
def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/recommend/interaction/" in out.read_text()


def test_health_checks_module_imports_without_django_health_check():
    from xo_recommender import health_checks

    assert isinstance(health_checks.available, bool)
    assert callable(health_checks.recommender_problem)


def _configured():
    from django.conf import settings

    return dict(settings.XO_RECOMMENDER)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["options", "head", "put", "patch", "delete"])
def test_other_methods_never_fail(built, staff, method):
    owner, cafe = built["owner"], built["cafes"][0]
    urls = ["me/", f"{owner.pk}/", "health/", "sync/user/", "sync/business/", "interaction/",
            f"cache/clear/{owner.pk}/", f"user/{owner.pk}/interactions/",
            f"businesses/{cafe.pk}/similar/", "popular/", "schema/"]
    for url in urls:
        response = getattr(client_for(staff), method)(API + url)
        assert response.status_code < 500, (url, response.status_code)
        if method in ("put", "patch", "delete"):
            assert response.status_code == 405, url


@pytest.mark.django_db
def test_the_browsable_api_renders(built, staff):
    owner = built["owner"]
    client = client_for(staff)
    for url in ("me/", f"{owner.pk}/", "health/", "sync/user/", "interaction/",
                f"user/{owner.pk}/interactions/", "popular/", f"{owner.pk}/?limit=0"):
        response = client.get(API + url, HTTP_ACCEPT="text/html")
        assert response.status_code < 500, url
        assert response["Content-Type"].startswith("text/html"), url


# ----------------------------------------------------------------------- cache outage


def test_cache_down_the_api_still_answers_and_health_says_degraded(built, settings):
    """Redis down: recommendations are computed, throttling lets requests through, no 5xx."""
    from unittest import mock

    from django.core.cache import caches

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "xo_recommender_read": "5/min", "xo_recommender_write": "5/min"}}
    backend = type(caches["default"])
    broken = ConnectionError("connection refused")
    owner = built["owner"]
    with mock.patch.multiple(backend, get=mock.Mock(side_effect=broken),
                             get_many=mock.Mock(side_effect=broken),
                             set=mock.Mock(side_effect=broken),
                             add=mock.Mock(side_effect=broken),
                             incr=mock.Mock(side_effect=broken),
                             delete=mock.Mock(side_effect=broken)):
        answers = [client_for(owner).get(f"{API}{owner.pk}/") for _ in range(7)]
        recorded = post(client_for(owner), f"{API}interaction/",
                        {"user_id": owner.pk, "business_id": built["cafes"][3].pk,
                         "interaction_type": "view"})
        health = APIClient().get(f"{API}health/")
    assert [a.status_code for a in answers] == [200] * 7  # over the rate, yet not throttled
    assert all(a.json()["cached"] is False for a in answers)
    assert recorded.status_code == 201
    assert health.status_code == 200 and health.json()["cache"]["status"] == "degraded"
