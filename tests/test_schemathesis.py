"""Schemathesis, every check on, against the app in process: the published schema and
the behaviour agree (limits, enums, status codes, content types), and no input makes a
5xx. A bounded run (``SCHEMATHESIS_EXAMPLES`` per operation, default 15) keeps CI short.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import record_interaction
from xo_recommender.services import rebuild

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
#: Every check on. A schema-valid request may still be a 400 for a rule across
#: parameters that OpenAPI 3.0 cannot state (lat with lng, radius_km needing a point,
#: limit and max_results disagreeing, offset + limit within 10 × MAX_RESULTS); every
#: such 400 is JSON naming the field, which the other checks verify.
CONFIG = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "400", "401", "403", "404", "429"]}}})


@pytest.fixture
def api_schema(db):
    """The schema served by the app, called in process like Django's test client: the
    per-request connection cleanup is off, or it would close the test's transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from example_project.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/recommend/schema/?format=json",
                                             application, config=CONFIG)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def service_token(db):
    coffee = CategoryFactory(name="Coffee", slug="coffee")
    businesses = [BusinessFactory(categories=[coffee]) for _ in range(5)]
    users = [UserFactory(interests=["coffee"]) for _ in range(3)]
    for user in users:
        for business in businesses[:3]:
            record_interaction(user, business, "like")
    rebuild()
    return Token.objects.create(user=UserFactory(is_staff=True)).key


#: The parameters a cross-parameter rule can reject although each is schema-valid.
CROSS_FIELD = {"lat", "lng", "radius_km", "limit", "max_results", "offset"}


def only_cross_field_400s(ctx, response, case):
    """A schema-valid request answered 400 must name only cross-parameter fields."""
    meta = case.meta
    if response.status_code != 400 or meta is None or not meta.generation.mode.is_positive:
        return None
    fields = set(response.json())
    if not fields <= CROSS_FIELD:
        raise AssertionError(f"schema-valid request rejected for {sorted(fields)}: "
                             f"{response.text[:300]}")
    return None


def test_the_api_matches_its_schema(api_schema, service_token):
    """Every operation, ``EXAMPLES`` generated cases each, all checks."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                             suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers={"Authorization": f"Token {service_token}"},
                                   additional_checks=[only_cross_field_400s])

        check()
