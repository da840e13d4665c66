"""The optional django-health-check classes, run by django-health-check itself."""

import asyncio

import pytest

from tests.factories import BusinessFactory, UserFactory
from xo_recommender import health_checks, record_interaction
from xo_recommender.services import rebuild


def run(check_class):
    return asyncio.run(check_class().get_result())


def test_the_classes_exist_when_django_health_check_is_installed():
    assert health_checks.available
    assert health_checks.RecommenderHealthCheck and health_checks.RecommenderModelHealthCheck


@pytest.mark.django_db(transaction=True)  # the checks run in django-health-check's threads
def test_model_check_fails_until_a_rebuild_and_the_service_check_passes():
    assert run(health_checks.RecommenderHealthCheck).error is None
    missing = run(health_checks.RecommenderModelHealthCheck)
    assert missing.error is not None and "rebuild_recommendations" in str(missing.error)

    record_interaction(UserFactory(), BusinessFactory(), "like")
    rebuild()
    assert run(health_checks.RecommenderModelHealthCheck).error is None


@pytest.mark.django_db(transaction=True)
def test_service_check_fails_when_a_required_part_is_down(settings):
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER,
                               "HEALTH_REQUIRED": ["database", "broker"]}
    settings.CELERY_BROKER_URL = ""
    # no broker configured: reported as inline (tasks run where sent), so still healthy
    assert run(health_checks.RecommenderHealthCheck).error is None
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "HEALTH_REQUIRED": ["cache"]}
    from unittest import mock

    from django.core.cache import caches

    with mock.patch.object(type(caches["default"]), "get", side_effect=ConnectionError("down")):
        failed = run(health_checks.RecommenderHealthCheck)
    assert failed.error is not None and "cache" in str(failed.error)
