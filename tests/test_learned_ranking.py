"""Rebuilds learn their ranking from the site's own data and carry the evidence: the
holdout figures of the model and of every baseline are stored in the version, printed
by ``rebuild_recommendations``, shown in the admin and summed up by ``health/``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.factories import UserFactory
from xo_recommender.engine.selfeval import DEFAULT_RANKING
from xo_recommender.holdout_report import tuning_text
from xo_recommender.models import ModelVersion
from xo_recommender.services import health, rebuild

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"TUNING_SECONDS": 15, "TUNING_MAX_USERS": 150}


@pytest.fixture
def demo_site(settings):
    settings.XO_RECOMMENDER = {**getattr(settings, "XO_RECOMMENDER", {}), **FAST}
    call_command("seed_demo", users=400, businesses=160, interactions=6000, seed=3,
                 quiet=True, stdout=StringIO())


def run_rebuild() -> str:
    out = StringIO()
    call_command("rebuild_recommendations", stdout=out)
    return out.getvalue()


def test_a_rebuild_learns_measures_and_prints_the_holdout(demo_site):
    output = run_rebuild()
    version = ModelVersion.objects.get(is_active=True)
    holdout = version.metrics["holdout"]
    assert holdout["users"] > 0 and holdout["cold_users"] > 0
    assert set(holdout["model"]) == {"history", "cold"}
    assert {"popular", "popular_nearby", "collaborative_only", "heuristic", "hand_set"} <= set(
        holdout["baselines"])
    assert version.metrics["serving"]
    assert version.params["ranking"]["history"]  # the weights that serve are stored
    assert "Holdout (k=10)" in output and "popular_nearby" in output
    assert "Serving:" in output
    model_ndcg = holdout["model"]["history"]["ndcg@10"]
    assert f"{model_ndcg:7.4f}".strip() in output
    tuning = version.metrics["tuning"]
    assert {"hyperparameters", "tried", "weights", "seconds"} <= set(tuning)
    for name, value in tuning["hyperparameters"].items():  # what was chosen serves
        served = (version.params["half_life_days"] if name == "half_life_days"
                  else version.params["collaborative"]["l2_rel"])
        assert served == value


def test_the_hyperparameter_line_marks_what_was_chosen():
    metrics = {"tuning": {"hyperparameters": {"half_life_days": 30.0},
                          "tried": {"half_life_days": {"90": 0.41, "30": 0.43, "none": 0.4},
                                    "l2_rel": {"4": 0.43, "1": 0.42}}}}
    assert tuning_text(metrics) == ("half_life_days 90: 0.4100, 30: 0.4300 (chosen), "
                                    "none: 0.4000; l2_rel 4: 0.4300 (chosen), 1: 0.4200")
    assert tuning_text({}) == ""
    kept = {"tuning": {"hyperparameters": {},
                       "tried": {"half_life_days": {"90": 0.7843, "30": 0.7876}}}}
    assert tuning_text(kept) == ("half_life_days 90: 0.7843 (chosen: none beat it by 1%), "
                                 "30: 0.7876")  # 30 scored higher, not by the margin
    later = {"tuning": {"hyperparameters": {"half_life_days": 30.0}, "tried": {
        "half_life_days": {"90": 0.41, "30": 0.43, "none": 0.432}}}}
    assert tuning_text(later) == ("half_life_days 90: 0.4100, 30: 0.4300 (chosen: none "
                                  "beat it by 1%), none: 0.4320")


def test_on_generated_data_the_learned_model_beats_popular(demo_site):
    run_rebuild()
    holdout = ModelVersion.objects.get(is_active=True).metrics["holdout"]
    for segment in ("history", "cold"):
        assert (holdout["model"][segment]["ndcg@10"]
                > holdout["baselines"]["popular"][segment]["ndcg@10"])


def test_the_admin_and_health_show_the_evidence(demo_site, client):
    run_rebuild()
    version = ModelVersion.objects.get(is_active=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:xo_recommender_modelversion_change", args=[version.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "popular_nearby" in text and version.metrics["guardrail"] in text
    assert "hyperparameters (holdout ndcg@10)" in text.lower()
    _, report = health()
    assert report["serving"] == version.metrics["serving"]


def test_a_baseline_serves_where_the_model_does_not_beat_it(demo_site, monkeypatch):
    """The guardrail, end to end: whatever the figures, serving follows the rule."""
    from xo_recommender.engine import selfeval

    monkeypatch.setattr(selfeval, "choose_serving",
                        lambda figures: None if not figures else "popular_nearby")
    run_rebuild()
    version = ModelVersion.objects.get(is_active=True)
    assert version.metrics["serving"] == "popular_nearby"
    assert "did not beat" in version.metrics["guardrail"]
    learned = version.params["ranking"]["history"]
    assert learned.get("collaborative", 0) == 0  # popular-nearby weighs no collaboration
    _, report = health()
    assert report["serving"] == "popular_nearby"


def test_tiny_data_builds_with_defaults_and_says_why(settings):
    settings.XO_RECOMMENDER = FAST
    call_command("seed_demo", users=5, businesses=5, interactions=20, seed=1, quiet=True,
                 stdout=StringIO())
    output = run_rebuild()
    version = ModelVersion.objects.get(is_active=True)
    assert version.metrics["holdout"] is None
    assert version.params["ranking"] == DEFAULT_RANKING
    assert "default weights serve" in output


def test_fixed_blend_weights_learn_nothing(demo_site, settings):
    settings.XO_RECOMMENDER = {**FAST, "BLEND_WEIGHTS": {"proximity": 1.0}}
    version = rebuild()
    assert version.params["ranking"] is None
    assert version.metrics["serving"] == "fixed BLEND_WEIGHTS"


def test_evaluate_live_prints_the_table_and_activates_nothing(demo_site):
    before = ModelVersion.objects.count()
    out = StringIO()
    call_command("evaluate_recommender", "--live", stdout=out, stderr=StringIO())
    assert "Holdout (k=10)" in out.getvalue() and "heuristic" in out.getvalue()
    assert ModelVersion.objects.count() == before


def test_evaluate_needs_files_or_live(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--live"):
        call_command("evaluate_recommender", stdout=StringIO())
