"""The example project's demo: the product page, its buttons, sign-in and the sign-ins printed."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import record_interaction
from xo_recommender.models import Interaction
from xo_recommender.services import rebuild


@pytest.fixture
def town(db):
    """Twelve cafes and a bookshop liked by a crowd; a demo user who liked one cafe."""
    coffee = CategoryFactory(name="Coffee", slug="coffee")
    books = CategoryFactory(name="Books", slug="books")
    cafes = [BusinessFactory(name=f"Cafe {i}", categories=[coffee], latitude=33.75 + i / 100)
             for i in range(12)]
    shop = BusinessFactory(name="Corner Books", categories=[books])
    crowd = [UserFactory(username=f"crowd{i}") for i in range(4)]
    for person in crowd:
        for place in [*cafes, shop]:
            record_interaction(person, place, "like")
    demo = UserFactory(username="demo_user_000000", first_name="Ada", last_name="Demo")
    demo.set_password("demo")
    demo.save()
    record_interaction(demo, cafes[0], "like")
    rebuild()
    return {"demo": demo, "cafes": cafes, "shop": shop, "crowd": crowd}


def card_ids(response):
    return [int(i) for i in re.findall(r'data-business="(\d+)"', response.content.decode())]


@pytest.mark.django_db
def test_anonymous_visitor_sees_the_demo_users_cards_map_and_because_panel(client, town):
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Recommended for Ada Demo" in page
    assert card_ids(response) and town["cafes"][0].pk not in card_ids(response)  # liked
    assert "leaflet/leaflet.js" in page and 'id="map-data"' in page
    assert "Because you liked Cafe 0" in page or "Similar to Cafe 0" in page
    assert 'id="because"' in page and "like · Cafe 0" in page
    assert 'action="/act/' not in page  # read-only until signed in
    assert reverse("xo_recommender:docs") in page and reverse("xo_recommender:redoc") in page


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "message"), [
    ("?user=99999", "There is no user with id 99999."),
    ("?user=abc", "is not a user id"),
])
def test_unknown_or_malformed_user_says_so_instead_of_showing_someone_else(client, town,
                                                                          query, message):
    response = client.get("/" + query)
    assert message in response.content.decode()
    assert card_ids(response) == []


@pytest.mark.django_db
def test_category_filter_and_unknown_category(client, town):
    books = client.get("/", {"category": "Books"})
    assert card_ids(books) == [town["shop"].pk]
    unknown = client.get("/", {"category": "Nope"})
    assert "There is no category “Nope”" in unknown.content.decode()
    assert card_ids(unknown)  # every category instead


@pytest.mark.django_db
def test_signed_in_user_sees_their_own_page_even_with_another_user_in_the_query(client, town):
    client.force_login(town["crowd"][0])
    page = client.get("/", {"user": town["demo"].pk}).content.decode()
    assert "only staff can look at another user" in page
    assert f"Recommended for {town['crowd'][0].username}" in page


@pytest.mark.django_db
def test_staff_picks_any_user(client, town):
    client.force_login(UserFactory(username="boss", is_staff=True))
    page = client.get("/", {"user": town["crowd"][1].pk}).content.decode()
    assert f"Recommended for {town['crowd'][1].username}" in page
    assert 'id="user"' in page  # the picker


@pytest.mark.django_db
def test_save_records_the_interaction_and_the_list_changes_at_once(client, town):
    demo = town["demo"]
    assert client.login(username="demo_user_000000", password="demo")
    before = card_ids(client.get("/"))
    saved = before[0]
    response = client.post(f"/act/{saved}/", {"action": "save", "user": demo.pk}, follow=True)
    assert Interaction.objects.filter(user=demo, business_id=saved,
                                      interaction_type="save").exists()
    after = card_ids(response)
    assert saved not in after and after != before
    page = response.content.decode()
    assert "Saved " in page and "badge new" in page  # what took its place is marked
    assert "only staff" not in page  # back on their own page, no confusing notice


@pytest.mark.django_db
def test_hide_drops_a_business(client, town):
    assert client.login(username="demo_user_000000", password="demo")
    hidden = card_ids(client.get("/"))[-1]
    after = card_ids(client.post(f"/act/{hidden}/", {"action": "hide"}, follow=True))
    assert hidden not in after


@pytest.mark.django_db
def test_acting_for_another_user_or_an_unknown_action_is_refused(client, town):
    client.force_login(town["crowd"][0])
    target = town["shop"].pk
    page = client.post(f"/act/{target}/", {"action": "save", "user": town["demo"].pk},
                       follow=True).content.decode()
    assert "You may only act for yourself." in page
    page = client.post(f"/act/{target}/", {"action": "purchase"}, follow=True).content.decode()
    assert "is not something you can do here" in page
    assert not Interaction.objects.filter(business_id=target, interaction_type="save").exists()


@pytest.mark.django_db
def test_acting_needs_sign_in(client, town):
    response = client.post(f"/act/{town['shop'].pk}/", {"action": "save"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_sign_in_page_signs_in_an_ordinary_user(client, town):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "demo_user_000000",
                                                "password": "demo", "next": "/"})
    assert response.status_code == 302
    assert 'id="signed-in">demo_user_000000' in client.get("/").content.decode()


@pytest.mark.django_db
def test_demo_accounts_prints_sign_ins_that_work(client, town):
    out = io.StringIO()
    call_command("demo_accounts", "--base-url", "http://127.0.0.1:8123", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8123/" in text
    assert "demo_admin / demo-admin" in text and "demo_user_000000 / demo" in text
    key = Token.objects.get(user=town["demo"]).key
    assert key in text
    assert client.login(username="demo_admin", password="demo-admin")
    assert client.get("/admin/").status_code == 200
    client.logout()
    answer = client.get("/api/recommend/me/", HTTP_AUTHORIZATION=f"Token {key}")
    assert answer.status_code == 200 and answer.json()["user_id"] == town["demo"].pk
    town["demo"].set_password("changed")
    town["demo"].save()
    call_command("demo_accounts", stdout=io.StringIO())  # idempotent: same token
    assert Token.objects.get(user=town["demo"]).key == key
    assert client.login(username="demo_user_000000", password="demo")  # reset to the above
