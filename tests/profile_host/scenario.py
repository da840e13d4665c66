"""A profile host end to end: accounts act for their own profile, never for the profile
whose id equals their account's.

Run by ``tests/test_request_user.py`` as
``DJANGO_SETTINGS_MODULE=tests.profile_host.settings python -m tests.profile_host.scenario``
on a fresh SQLite file; prints one JSON line of what it saw, and exits non-zero on the
first surprise.
"""

import json

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from example_project.xo_black.models import Business, User  # noqa: E402
from tests.profile_host.models import Profile  # noqa: E402
from xo_recommender import recommend_for, record_interaction  # noqa: E402
from xo_recommender.exceptions import InvalidArgument  # noqa: E402

API = "/api/recommend/"


def client(account: User) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=account)[0].key}")
    return api


def main() -> None:
    call_command("migrate", verbosity=0)
    call_command("check", fail_level="WARNING")  # no W011 / E011 with the field named
    alice, bob, carol = (User.objects.create(username=n) for n in ("alice", "bob", "carol"))
    bobs = Profile.objects.create(account=bob, latitude=33.75, longitude=-84.39)
    alices = Profile.objects.create(account=alice, latitude=33.75, longitude=-84.39)
    assert alice.pk == bobs.pk != alices.pk, (alice.pk, bobs.pk, alices.pk)
    clinic = Business.objects.create(slug="clinic", name="Secret Clinic", latitude=33.75,
                                     longitude=-84.39)
    cafe = Business.objects.create(slug="cafe", name="Cafe", latitude=33.76, longitude=-84.38)
    record_interaction(bobs, clinic, "save")
    seen = {}
    as_alice = client(alice)

    response = as_alice.get(f"{API}user/{bobs.pk}/interactions/")  # her account's id
    seen["bobs_history"] = response.status_code
    assert response.status_code == 403, response.content
    response = as_alice.get(f"{API}user/{alices.pk}/interactions/")
    seen["own_history"] = [response.status_code, response.json()["count"]]
    assert response.status_code == 200 and response.json()["count"] == 0, response.content

    response = as_alice.post(f"{API}interaction/", {"business_id": cafe.pk,
                                                    "interaction_type": "like"}, format="json")
    seen["record_own"] = response.status_code
    assert response.status_code == 201, response.content
    mine = as_alice.get(f"{API}user/{alices.pk}/interactions/").json()["results"]
    assert [(r["business_id"], r["interaction_type"]) for r in mine] == [(cafe.pk, "like")]
    response = as_alice.post(f"{API}interaction/", {
        "user_id": bobs.pk, "business_id": cafe.pk, "interaction_type": "view"}, format="json")
    seen["record_for_bob"] = response.status_code
    assert response.status_code == 403, response.content

    call_command("rebuild_recommendations", verbosity=0)
    response = as_alice.get(f"{API}me/")
    seen["me"] = [response.status_code, response.json().get("user_id")]
    assert response.status_code == 200 and response.json()["user_id"] == alices.pk, \
        response.content
    response = client(carol).get(f"{API}me/")  # an account without a profile
    seen["no_profile_me"] = [response.status_code, response["Content-Type"]]
    assert response.status_code == 403 and response["Content-Type"] == "application/json", \
        response.content
    for call in (lambda: record_interaction(alice, cafe, "view"),
                 lambda: recommend_for(alice)):  # the account, not its profile
        try:
            call()
        except (ValidationError, InvalidArgument) as exc:
            assert "Profile" in str(exc) and "User" in str(exc), exc
        else:
            raise AssertionError("an account was taken for a profile")
    assert [p.business.pk for p in recommend_for(alices)] == [clinic.pk]  # cafe liked

    # Linked by username: the account named after alice's id must stay another person.
    named = User.objects.create(username=str(alice.pk))
    theirs = Profile.objects.create(account=named, handle=named)
    record_interaction(theirs, clinic, "save")
    Profile.objects.filter(pk=alices.pk).update(handle=alice)
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER,
                                           "REQUEST_USER_FIELD": "handle"}):
        call_command("check", fail_level="WARNING")
        response = client(alice).get(f"{API}me/")
        seen["me_by_username_link"] = response.json().get("user_id")
        assert response.json()["user_id"] == alices.pk, response.content
        response = client(alice).get(f"{API}user/{theirs.pk}/interactions/")
        seen["named_history"] = response.status_code
        assert response.status_code == 403, response.content
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
