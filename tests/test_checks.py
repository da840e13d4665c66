"""System checks: each wrong setting is an error naming it, with a hint; no traceback."""

from decimal import Decimal

import numpy as np
import pytest
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import connection
from django.test import override_settings

from xo_recommender import sources
from xo_recommender.checks import check_settings, check_source_mapping, check_views


def ids(messages):
    return [m.id for m in messages]


def configured_with(business=None, **other):
    """The example project's XO_RECOMMENDER with some business fields or keys changed."""
    configured = settings.XO_RECOMMENDER
    fields = {**configured["BUSINESS_FIELDS"], **(business or {})}
    return {**configured, "BUSINESS_FIELDS": fields, **other}


def test_the_configured_example_project_passes_every_check():
    assert checks.run_checks() == []


@override_settings(XO_RECOMMENDER_BUSINESS_MODEL=None)
def test_unset_business_model():
    [error] = check_source_mapping()
    assert error.id == "xo_recommender.E001"
    assert "XO_RECOMMENDER_BUSINESS_MODEL" in error.msg and error.hint


@pytest.mark.parametrize("label", ["xo_black.Nope", "nodots", "missing_app.Business"])
def test_business_model_that_does_not_resolve(label):
    with override_settings(XO_RECOMMENDER_BUSINESS_MODEL=label):
        [error] = check_source_mapping()
    assert error.id == "xo_recommender.E002"
    assert label in error.msg


@override_settings(XO_RECOMMENDER_USER_MODEL="auth.Nope")
def test_user_model_that_does_not_resolve():
    assert ids(check_source_mapping()) == ["xo_recommender.E002"]


def test_mapped_field_missing_names_the_setting_key():
    with override_settings(XO_RECOMMENDER=configured_with({"popularity": "stars"})):
        [error] = check_source_mapping()
    assert error.id == "xo_recommender.E003"
    assert 'XO_RECOMMENDER["BUSINESS_FIELDS"][\'popularity\']' in error.msg
    assert "stars" in error.msg


def test_every_wrong_field_is_reported_in_one_run():
    """A host whose names all differ learns them in one ``check``, not one per run."""
    wrong = {"name": "title", "popularity": "stars", "rating": "score"}
    with override_settings(XO_RECOMMENDER=configured_with(wrong)):
        errors = check_source_mapping()
        with pytest.raises(sources.SourceMappingError, match=r"\(and 2 more: run"):
            sources.business_view(apps, connection)  # as the migration meets it
    assert ids(errors) == ["xo_recommender.E003"] * 3
    for key, host in wrong.items():
        assert sum(f"['{key}']" in e.msg and host in e.msg for e in errors) == 1


def test_required_field_unmapped():
    with override_settings(XO_RECOMMENDER=configured_with({"name": None})):
        assert ids(check_source_mapping()) == ["xo_recommender.E003"]


@pytest.mark.parametrize("key, host_field", [
    ("latitude", "name"),          # text where a number is needed
    ("categories", "rating"),      # number where terms are needed
    ("is_active", "name"),         # text where a boolean is needed
    ("name", "created_at"),        # datetime where text is needed
])
def test_mapped_field_of_unusable_type(key, host_field):
    with override_settings(XO_RECOMMENDER=configured_with({key: host_field})):
        [error] = check_source_mapping()
    assert error.id == "xo_recommender.E004"
    assert key in error.msg and host_field in error.msg


@override_settings(XO_RECOMMENDER={"BUSINESS_FIELDS": {"label_field": "name"}, "CACHE_ALIASS": "x"})
def test_unknown_keys():
    assert "xo_recommender.E005" in ids(check_source_mapping())
    assert ids(check_settings()) == ["xo_recommender.E005"]


@override_settings(XO_RECOMMENDER={"CACHE_ALIAS": "recommendations"})
def test_cache_alias_must_be_configured():
    [error] = check_settings()
    assert error.id == "xo_recommender.E006" and "recommendations" in error.msg


@pytest.mark.parametrize("weights", [{}, {"view": "heavy"}, {"view": float("nan")}, ["view"]])
def test_interaction_weights_must_be_finite_numbers(weights):
    with override_settings(XO_RECOMMENDER={"INTERACTION_WEIGHTS": weights}):
        assert ids(check_settings()) == ["xo_recommender.E007"]


@pytest.mark.django_db
def test_missing_and_stale_views_are_warnings_on_the_database_checked():
    assert check_views(databases=["default"]) == []
    with override_settings(XO_RECOMMENDER=configured_with({"tags": None})):
        assert set(ids(check_views(databases=["default"]))) == {"xo_recommender.W002"}
    sources.drop_views(connection)
    warnings = check_views(databases=["default"])
    assert ids(warnings) == ["xo_recommender.W001", "xo_recommender.W001"]
    assert "recommender_views create" in warnings[0].hint


def test_bad_mapping_stops_manage_py_check_with_the_error_not_a_traceback():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    bad = configured_with({"latitude": "name"})
    with override_settings(XO_RECOMMENDER=bad), pytest.raises(SystemCheckError, match="E004"):
        call_command("check")


def test_a_host_without_drf_spectacular_schema_class_is_told_what_to_set(settings):
    settings.REST_FRAMEWORK = {k: v for k, v in settings.REST_FRAMEWORK.items()
                               if k != "DEFAULT_SCHEMA_CLASS"}
    from xo_recommender.checks import check_schema_class

    [error] = check_schema_class()
    assert error.id == "xo_recommender.E010"
    assert "DEFAULT_SCHEMA_CLASS" in error.msg
    assert "is rest_framework.schemas.openapi.AutoSchema;" in error.msg  # which AutoSchema
    assert "drf_spectacular.openapi.AutoSchema" in error.hint


def test_drf_spectacular_schema_class_passes():
    from xo_recommender.checks import check_schema_class

    assert check_schema_class() == []


def test_docs_without_the_sidecar_app_are_a_warning(settings):
    from xo_recommender.checks import check_docs_assets

    assert check_docs_assets() == []
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS
                               if a != "drf_spectacular_sidecar"]
    [warning] = check_docs_assets()
    assert warning.id == "xo_recommender.W010" and "INSTALLED_APPS" in warning.hint


@pytest.mark.parametrize("fields", [{"tags": 5}, {"tags": ""}, {"name": ["name"]}])
def test_a_mapped_value_that_is_no_field_name_is_an_error_not_a_traceback(fields):
    with override_settings(XO_RECOMMENDER=configured_with(fields)):
        errors = check_source_mapping()
    [key] = fields
    assert [e.id for e in errors] == ["xo_recommender.E003"]
    assert repr(key) in errors[0].msg and errors[0].hint


def test_a_mapping_that_is_no_dict_is_an_error():
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, "USER_FIELDS": "x"}):
        errors = check_source_mapping()
    assert [e.id for e in errors] == ["xo_recommender.E005"] and "dict" in errors[0].msg


@pytest.mark.parametrize(("key", "value"), [
    ("MAX_RESULTS", "abc"), ("MAX_RESULTS", 0), ("MAX_RESULTS", 2.5), ("MAX_BATCH", True),
    ("DIVERSITY_LAMBDA", 2), ("GEO_SCALE_KM", 0), ("TUNING_SECONDS", float("nan")),
    ("CACHE_TIMEOUT", None), ("HALF_LIFE_DAYS", -1), ("MAX_RESULTS", 10**400),
    ("DIVERSITY_LAMBDA", 1j),
])
def test_a_numeric_setting_out_of_its_range_is_an_error(key, value):
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, key: value}):
        errors = check_settings()
    assert [e.id for e in errors] == ["xo_recommender.E012"]
    assert key in errors[0].msg and errors[0].hint


@pytest.mark.parametrize(("key", "value"), [
    ("HALF_LIFE_DAYS", None), ("STATEMENT_TIMEOUT_MS", None), ("STATEMENT_TIMEOUT_MS", 0),
    ("MAX_RESULTS", 50), ("DIVERSITY_LAMBDA", 0.5), ("TUNING_SECONDS", 10),
    ("MAX_RESULTS", np.int64(50)), ("DIVERSITY_LAMBDA", Decimal("0.5")),
])
def test_numeric_settings_in_range_pass(key, value):
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, key: value}):
        assert check_settings() == []


def test_a_boolean_interaction_weight_is_refused():
    weights = {"view": True, "like": 3.0}
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER,
                                           "INTERACTION_WEIGHTS": weights}):
        assert ids(check_settings()) == ["xo_recommender.E007"]


def test_a_mapping_key_that_is_no_text_is_an_error_not_a_traceback():
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, "USER_FIELDS": {5: "x"}}):
        errors = check_source_mapping()
    assert [e.id for e in errors] == ["xo_recommender.E005"] and "5" in errors[0].msg


def test_a_user_model_setting_that_is_no_text_is_an_error_not_a_traceback():
    from xo_recommender.checks import check_integer_primary_keys, check_request_user

    with override_settings(XO_RECOMMENDER_USER_MODEL=5):
        assert "xo_recommender.E002" in ids(check_source_mapping())
        assert check_request_user() == [] and check_integer_primary_keys() == []


def test_token_authentication_without_its_app_is_an_error(monkeypatch):
    from xo_recommender import checks as checks_module
    from xo_recommender.checks import check_token_authentication

    assert check_token_authentication() == []  # the example project has both
    installed = checks_module.global_apps.is_installed
    monkeypatch.setattr(checks_module.global_apps, "is_installed",
                        lambda name: name != "rest_framework.authtoken" and installed(name))
    [error] = check_token_authentication()
    assert error.id == "xo_recommender.E013" and "rest_framework.authtoken" in error.hint
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication"]}
    with override_settings(REST_FRAMEWORK=rest):
        assert check_token_authentication() == []


@pytest.mark.parametrize(("key", "value"), [
    ("BLEND_WEIGHTS", {"collaborative": "high"}), ("BLEND_WEIGHTS", ["x"]),
    ("BLEND_WEIGHTS", {"teleport": 1.0}), ("COLLABORATIVE", ["x"]),
    ("COLLABORATIVE", {"lambda": 3.0}), ("COLLABORATIVE", {"l2_rel": "big"}),
    ("COLLABORATIVE", {"l2_rel": None}),
    ("EXCLUDE_INTERACTED_TYPES", None), ("EXCLUDE_INTERACTED_TYPES", "like"),
    ("HEALTH_REQUIRED", ["Database"]), ("HEALTH_REQUIRED", "database"),
    ("DIVERSIFY", "no"), ("LIVE_ACTIVE_CHECK", 1), ("ARTIFACT_DIR", 5),
    ("SITE_NAME", 7),
])
def test_a_setting_of_the_wrong_shape_is_an_error(key, value):
    """Each of these passed ``check`` and then made every request a 500, or (a flag
    given as "no", a health part misspelt) silently meant something else."""
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, key: value}):
        errors = check_settings()
    assert [e.id for e in errors] == ["xo_recommender.E014"]
    assert key in errors[0].msg and errors[0].hint


@pytest.mark.parametrize(("key", "value"), [
    ("BLEND_WEIGHTS", {"collaborative": 2, "proximity": 0.5}),
    ("COLLABORATIVE", {"l2_rel": 8.0, "top_k": None}), ("EXCLUDE_INTERACTED_TYPES", ()),
    ("EXCLUDE_INTERACTED_TYPES", {"like", "save"}), ("HEALTH_REQUIRED", frozenset({"cache"})),
    ("HEALTH_REQUIRED", ["database", "cache"]), ("DIVERSIFY", True),
    ("ARTIFACT_DIR", False), ("ARTIFACT_DIR", "/tmp/xo"), ("SITE_NAME", "XO Black"),
])
def test_settings_of_the_right_shape_pass(key, value):
    with override_settings(XO_RECOMMENDER={**settings.XO_RECOMMENDER, key: value}):
        assert check_settings() == []


@pytest.mark.parametrize("rate", ["10/fortnight", "5 per minute", "x/min", 10])
def test_a_throttle_rate_drf_cannot_read_is_an_error(rate):
    rates = {"xo_recommender_read": "100/min", "xo_recommender_write": rate}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK,
                                           "DEFAULT_THROTTLE_RATES": rates}):
        errors = check_settings()
        rates["xo_recommender_write"] = "20/hour"
        assert check_settings() == []
    assert [e.id for e in errors] == ["xo_recommender.E014"]
    assert "xo_recommender_write" in errors[0].msg
