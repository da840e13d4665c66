"""Admin pages render for staff: interactions, model versions, the per-user preview."""

import pytest
from django.urls import reverse

from tests.factories import BusinessFactory, UserFactory
from xo_recommender import artifacts, record_interaction
from xo_recommender.services import rebuild


@pytest.fixture
def staff_client(client, db):
    admin_user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_changelists_render(staff_client):
    record_interaction(UserFactory(), BusinessFactory(), "view")
    rebuild()
    for name in ("xo_recommender_interaction_changelist", "xo_recommender_modelversion_changelist"):
        response = staff_client.get(reverse(f"admin:{name}"))
        assert response.status_code == 200


@pytest.mark.django_db
def test_preview_shows_a_users_recommendations_with_reasons(staff_client):
    artifacts.forget_loaded()
    liked = BusinessFactory(name="Liked Place")
    other = BusinessFactory(name="Sister Place")
    people = [UserFactory() for _ in range(3)]
    for u in people:
        record_interaction(u, liked, "like")
        record_interaction(u, other, "like")
    viewer = UserFactory()
    record_interaction(viewer, liked, "like")
    rebuild()
    url = reverse("admin:xo_recommender_preview")
    page = staff_client.get(url, {"user": viewer.pk}).content.decode()
    assert "Sister Place" in page and "Because you liked Liked Place" in page
    assert "No user with id" in staff_client.get(url, {"user": 10**9}).content.decode()
    assert staff_client.get(url, {"user": "abc"}).status_code == 200


@pytest.mark.django_db
def test_preview_is_for_staff_only(client):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:xo_recommender_preview"))
    assert response.status_code == 302  # to the admin login
