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


def _figures(ndcg):
    return {"ndcg@10": ndcg, "precision@10": 0.123456, "recall@10": 0.3333333,
            "coverage": 0.52}


def _metrics(model_ndcg, popular_ndcg):
    return {"holdout": {"k": 10, "users": 812, "cold_users": 90,
                        "model": {"history": _figures(model_ndcg), "cold": _figures(0.2)},
                        "baselines": {"popular": {"history": _figures(popular_ndcg)},
                                      "heuristic": {"cold": _figures(0.1)}}},
            "serving": "model", "guardrail": "the model beats every baseline",
            "tuning": {"tried": 12}}


@pytest.mark.django_db
def test_version_page_shows_rounded_holdout_figures_or_says_there_are_none(staff_client):
    from xo_recommender.models import ModelVersion

    measured = ModelVersion.objects.create(status="ready", fit_seconds=0.48641673299999866,
                                           peak_rss_mb=123.456, metrics=_metrics(0.41, 0.25))
    bare = ModelVersion.objects.create(status="ready", metrics={})
    url = "admin:xo_recommender_modelversion_change"
    page = staff_client.get(reverse(url, args=[measured.pk])).content.decode()
    assert "0.5 s" in page and "123 MiB" in page and "0.48641673" not in page
    assert "0.410" in page and "0.123" in page and "0.333" in page and "0.1234" not in page
    assert "users with history" in page and "cold users" in page and "popular" in page
    assert "the model beats every baseline" in page and "812" in page
    page = staff_client.get(reverse(url, args=[bare.pk])).content.decode()
    assert "No holdout figures for this version." in page


@pytest.mark.django_db
def test_version_list_charts_model_against_baselines_across_versions(staff_client):
    from xo_recommender.models import ModelVersion

    for model, popular in ((0.30, 0.25), (0.41, 0.26)):
        ModelVersion.objects.create(status="ready", metrics=_metrics(model, popular))
    ModelVersion.objects.create(status="ready", metrics={})  # drawn without it
    page = staff_client.get(reverse("admin:xo_recommender_modelversion_changelist")
                            ).content.decode()
    charts = page[page.index('id="quality-charts"'):page.index("</div>", page.index(
        'id="quality-charts"'))]
    assert charts.count("<svg") == 2  # users with history, cold users
    assert "model: 0.410" in charts and "popular: 0.260" in charts
    assert "heuristic: 0.100" in charts  # cold-only baseline, in the cold chart
    assert charts.count("<polyline") >= 3


@pytest.mark.django_db
def test_version_list_without_figures_says_so(staff_client):
    page = staff_client.get(reverse("admin:xo_recommender_modelversion_changelist")
                            ).content.decode()
    assert "No holdout figures yet" in page


@pytest.mark.django_db
def test_interaction_list_charts_new_interactions_per_day_and_type(staff_client):
    user, place = UserFactory(), BusinessFactory()
    record_interaction(user, place, "view")
    record_interaction(user, place, "view")
    record_interaction(user, place, "save")
    page = staff_client.get(reverse("admin:xo_recommender_interaction_changelist")
                            ).content.decode()
    chart = page[page.index('id="interaction-chart"'):]
    assert "<svg" in chart and "Interactions per day (last activity) and type" in chart
    assert "· view: 1</title>" in chart and "· save: 1</title>" in chart
    assert reverse("admin:xo_recommender_preview") + f"?user={user.pk}" in page


@pytest.mark.django_db
def test_preview_is_linked_from_the_users_and_the_interactions_pages(staff_client):
    user = UserFactory()
    row = record_interaction(user, BusinessFactory(), "like")
    link = reverse("admin:xo_recommender_preview") + f"?user={user.pk}"
    user_page = staff_client.get(reverse("admin:xo_black_user_change", args=[user.pk]))
    assert link in user_page.content.decode()
    row_page = staff_client.get(reverse("admin:xo_recommender_interaction_change",
                                        args=[row.pk]))
    assert link in row_page.content.decode()


def test_chart_axis_tops_are_round_numbers():
    from xo_recommender.charts import _nice_max

    assert [_nice_max(v) for v in (0.41, 0.26, 3, 120, 0)] == [0.5, 0.5, 5, 200, 1.0]


@pytest.mark.django_db
def test_an_interaction_edited_by_hand_is_checked_as_a_recorded_one(staff_client):
    """No add form (a row needs the times recording sets: it was a 500); the change
    form refuses an unknown type and an out-of-range weight, and saves a valid edit."""
    from xo_recommender.models import Interaction

    assert staff_client.get(reverse("admin:xo_recommender_interaction_add")).status_code == 403
    row = record_interaction(UserFactory(), BusinessFactory(), "view")
    url = reverse("admin:xo_recommender_interaction_change", args=[row.pk])
    form = {"user": row.user_id, "business": row.business_id, "interaction_type": "view",
            "weight": "2.5"}
    for bad in ({"interaction_type": "bogus"}, {"weight": "999999999"}, {"weight": "nan"},
                {"weight": "-1"}):
        response = staff_client.post(url, {**form, **bad})
        assert response.status_code == 200 and response.context["adminform"].form.errors
    assert Interaction.objects.get(pk=row.pk).weight == 1.0  # nothing saved
    assert staff_client.post(url, {**form, "interaction_type": "save"}).status_code == 302
    saved = Interaction.objects.get(pk=row.pk)
    assert (saved.interaction_type, saved.weight) == ("save", 2.5)
