"""Host assumptions checked: integer primary keys (E008), separator characters in names,
the active model version safe from the admin's delete; the schema publishes its limits."""

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from tests.test_api import API, client_for
from xo_recommender import record_interaction
from xo_recommender.checks import check_integer_primary_keys
from xo_recommender.models import ModelVersion
from xo_recommender.services import rebuild, recommend_for


def test_integer_primary_keys_pass_and_a_text_key_is_e008(settings):
    assert check_integer_primary_keys() == []
    settings.XO_RECOMMENDER_USER_MODEL = "authtoken.Token"  # its key is a CharField
    errors = check_integer_primary_keys()
    assert [e.id for e in errors] == ["xo_recommender.E008"]
    assert "authtoken.Token" in errors[0].msg


@pytest.mark.django_db
def test_a_unit_separator_in_a_name_or_category_does_not_shift_the_catalogue():
    odd = CategoryFactory(name="Cafe\x1fBar", slug="cafe-bar")
    businesses = [BusinessFactory(name=f"Name\x1f{i}", categories=[odd]) for i in range(3)]
    plain = BusinessFactory(name="Plain")
    user = UserFactory()
    for b in businesses:
        record_interaction(UserFactory(), b, "like")
    record_interaction(user, businesses[0], "view")
    rebuild()
    names = {r.business.pk: r.business.name for r in recommend_for(user, 10)}
    assert plain.pk in names or businesses[1].pk in names
    page = client_for(user).get(f"{API}me/").json()["recommendations"]
    by_id = {b.pk: b.name for b in [*businesses, plain]}
    assert all(item["name"] == by_id[item["business_id"]] for item in page)


@pytest.mark.django_db
def test_the_admin_cannot_delete_the_active_version():
    record_interaction(UserFactory(), BusinessFactory(), "like")
    old, active = rebuild(), rebuild()
    old.refresh_from_db()
    admin = site._registry[ModelVersion]
    request = RequestFactory().get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    assert admin.has_delete_permission(request, old) is True
    assert admin.has_delete_permission(request, active) is False


@pytest.mark.django_db
def test_the_schema_publishes_limits_and_enums(settings):
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "MAX_RESULTS": 40}
    schema = client_for(UserFactory()).get(f"{API}schema/", {"format": "json"}).json()
    params = {p["name"]: p["schema"] for p in
              schema["paths"]["/api/recommend/{user_id}/"]["get"]["parameters"]}
    assert params["limit"]["maximum"] == 40 and params["max_results"]["maximum"] == 40
    body = schema["components"]["schemas"]["InteractionCreateRequest"]["properties"]
    assert body["interaction_type"]["allOf"] == [
        {"$ref": "#/components/schemas/InteractionTypeEnum"}]
    assert schema["components"]["schemas"]["InteractionTypeEnum"]["enum"] == list(
        settings.XO_RECOMMENDER["INTERACTION_WEIGHTS"])  # the host's types, in its order
    batch = schema["components"]["schemas"]["InteractionCreateBodyRequest"]["oneOf"][1]
    assert (batch["minItems"], batch["maxItems"]) == (1, 100)
    paging = {p["name"]: p["schema"] for p in
              schema["paths"]["/api/recommend/user/{user_id}/interactions/"]["get"]
              ["parameters"]}
    assert paging["page_size"] == {"type": "integer", "minimum": 1, "maximum": 100}


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["null", "0", "101", "-1", "x"])
def test_a_bad_page_size_is_400_not_ignored(value):
    user = UserFactory()
    response = client_for(user).get(f"{API}user/{user.pk}/interactions/", {"page_size": value})
    assert response.status_code == 400 and "page_size" in response.json()
