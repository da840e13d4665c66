"""Which recommender user a signed-in account is: itself when the recommender's users
are ``AUTH_USER_MODEL``; through ``REQUEST_USER_FIELD`` when they are another model (a
profile); nobody otherwise — account 1 never reads profile 1's history."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import BusinessFactory, UserFactory
from tests.test_api import API, client_for, post
from xo_recommender import record_interaction
from xo_recommender.checks import check_request_user
from xo_recommender.identity import recommender_user_id

ROOT = Path(__file__).resolve().parent.parent


def with_field(field):
    return {**settings.XO_RECOMMENDER, "REQUEST_USER_FIELD": field}


@pytest.mark.django_db
def test_accounts_are_the_recommender_users_by_default():
    user = UserFactory()
    assert recommender_user_id(user) == user.pk
    assert check_request_user() == []

    class Anonymous:
        is_authenticated = False

    assert recommender_user_id(Anonymous()) is None and recommender_user_id(None) is None


@pytest.mark.django_db
@override_settings(XO_RECOMMENDER_USER_MODEL="xo_black.Category")
def test_another_user_model_without_the_field_lets_an_account_act_for_nobody():
    alice = UserFactory()
    record_interaction(alice, BusinessFactory(), "save")  # stored before the switch
    client = client_for(alice)
    for url in (f"{API}user/{alice.pk}/interactions/", f"{API}{alice.pk}/",
                f"{API}me/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response["Content-Type"] == "application/json"
    response = post(client, f"{API}interaction/", {"business_id": 1,
                                                   "interaction_type": "like"})
    assert response.status_code == 403
    staff = client_for(UserFactory(is_staff=True))
    assert staff.get(f"{API}user/{alice.pk}/interactions/").status_code != 403
    [warning] = check_request_user()
    assert warning.id == "xo_recommender.W011" and "REQUEST_USER_FIELD" in warning.hint


@pytest.mark.parametrize("field", ["name", "nope", 5])
def test_a_request_user_field_that_is_no_relation_to_the_accounts_is_an_error(field):
    with override_settings(XO_RECOMMENDER_USER_MODEL="xo_black.Category",
                           XO_RECOMMENDER=with_field(field)):
        [error] = check_request_user()
    assert error.id == "xo_recommender.E011" and str(field) in error.msg


@override_settings(XO_RECOMMENDER_USER_MODEL="xo_black.Business",
                   XO_RECOMMENDER=with_field("categories"))
def test_a_relation_that_is_not_one_account_per_row_is_an_error():
    [error] = check_request_user()  # a many-to-many, and to categories at that
    assert error.id == "xo_recommender.E011"


@pytest.mark.django_db
def test_a_proxy_of_the_accounts_is_the_accounts():
    from django.contrib.auth import get_user_model

    class Member(get_user_model()):
        class Meta:
            proxy = True
            app_label = "xo_black"

    try:
        with override_settings(XO_RECOMMENDER_USER_MODEL="xo_black.Member"):
            user = UserFactory()
            assert recommender_user_id(user) == user.pk and check_request_user() == []
    finally:
        from django.apps import apps

        del apps.all_models["xo_black"]["member"]
        apps.clear_cache()


def test_a_relation_to_the_accounts_passes():
    # authtoken's Token has a OneToOneField "user" to AUTH_USER_MODEL
    with override_settings(XO_RECOMMENDER_USER_MODEL="authtoken.Token",
                           XO_RECOMMENDER=with_field("user")):
        assert check_request_user() == []


def test_a_profile_host_acts_for_its_own_profiles(tmp_path):
    """``tests/profile_host``: its own settings and database, since the user model shapes
    the interaction table's foreign key at migrate time."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.profile_host.settings",
           "PROFILE_HOST_DB": str(tmp_path / "profiles.sqlite3")}
    done = subprocess.run([sys.executable, "-m", "tests.profile_host.scenario"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"bobs_history": 403, "own_history": [200, 0], "record_own": 201,
                    "record_for_bob": 403, "me": [200, seen["me"][1]],
                    "no_profile_me": [403, "application/json"],
                    "me_by_username_link": seen["me"][1], "named_history": 403}
