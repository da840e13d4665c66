"""System checks: a wrong setting is a check error with a hint, never a traceback.

Ids:

* ``E001`` ``XO_RECOMMENDER_BUSINESS_MODEL`` unset
* ``E002`` a host model setting does not name an installed model
* ``E003`` a mapped field is missing (or a required one unmapped)
* ``E004`` a mapped field has a type the recommender cannot use
* ``E005`` unknown keys in ``XO_RECOMMENDER`` or in a field mapping
* ``E006`` ``CACHE_ALIAS`` is not in ``CACHES``
* ``E007`` ``INTERACTION_WEIGHTS`` is not a mapping of type names to finite numbers
* ``E012`` a numeric setting is not a number in its range
* ``E014`` a setting has the wrong shape (a list, a mapping, a flag, a path, a known
  name: ``SHAPES``), or one of the API's throttle rates is one DRF cannot read
* ``E013`` DRF's ``TokenAuthentication`` without ``rest_framework.authtoken`` installed
  (every request carrying a token would be a 500)
* ``E010`` DRF's ``DEFAULT_SCHEMA_CLASS`` is not drf-spectacular's (the schema would 500)
* ``W010`` ``drf_spectacular_sidecar`` not installed (the docs pages would have no assets)
* ``E008`` a host model's primary key is not an integer (the views, the interaction
  table's foreign keys and the model's arrays hold integer ids)
* ``E011`` ``REQUEST_USER_FIELD`` is not a relation of the recommender's user model to
  ``AUTH_USER_MODEL``
* ``W011`` the recommender's users are not ``AUTH_USER_MODEL`` and ``REQUEST_USER_FIELD``
  is unset: signed-in users act for nobody (``me/`` is a 403)
* ``W001`` the views are missing; ``W002`` they were built from another mapping
* ``W003`` the result cache is private to each process (local memory) while tasks run in
  other processes (a broker is configured), or in any deployment (``check --deploy``)
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

from xo_recommender import sources
from xo_recommender.broker import broker_configured
from xo_recommender.conf import DEFAULTS, SETTING_NAME
from xo_recommender.conf import settings as rec_settings


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    unknown = sorted(set(rec_settings.user_settings()) - set(DEFAULTS))
    if unknown:
        errors.append(Error(
            f"{SETTING_NAME} has unknown keys: {', '.join(unknown)}.",
            hint=f"Known keys: {', '.join(DEFAULTS)}.",
            id="xo_recommender.E005",
        ))
    alias = rec_settings.CACHE_ALIAS
    if alias not in django_settings.CACHES:
        errors.append(Error(
            f'{SETTING_NAME}["CACHE_ALIAS"] = {alias!r} is not a key of CACHES.',
            hint=f"Add a {alias!r} entry to CACHES, or set CACHE_ALIAS to one of: "
            f"{', '.join(django_settings.CACHES)}.",
            id="xo_recommender.E006",
        ))
    weights = rec_settings.INTERACTION_WEIGHTS
    if not isinstance(weights, dict) or not weights or not all(
        isinstance(k, str) and 0 < len(k) <= 32 and _finite(v) is not None
        for k, v in weights.items()
    ):
        errors.append(Error(
            f'{SETTING_NAME}["INTERACTION_WEIGHTS"] must map type names (at most 32 '
            "characters) to finite numbers.",
            hint='For example {"view": 1.0, "like": 3.0, "save": 4.0}.',
            id="xo_recommender.E007",
        ))
    for name, (whole, low, high, none_ok) in NUMBERS.items():
        value = getattr(rec_settings, name)
        if value is None and none_ok:
            continue
        number = _finite(value)
        fits = number is not None and (
            not whole or number.is_integer()) and (
            low is None or number >= low) and (high is None or number <= high)
        if not fits:
            span = (f"from {low} to {high}" if high is not None
                    else f"of at least {low}" if low is not None else "")
            errors.append(Error(
                f'{SETTING_NAME}["{name}"] = {value!r} is not '
                f"{'a whole number' if whole else 'a number'} {span}".rstrip() + ".",
                hint=f"The default is {DEFAULTS[name]!r}"
                + (" (None is allowed)." if none_ok else "."),
                id="xo_recommender.E012",
            ))
    for name, (test, expected) in SHAPES.items():
        value = getattr(rec_settings, name)
        if not test(value):
            errors.append(Error(
                f'{SETTING_NAME}["{name}"] = {value!r} is not {expected}.'[:500],
                hint=f"The default is {DEFAULTS[name]!r}.", id="xo_recommender.E014"))
    errors += _throttle_rate_errors()
    return errors


def _texts(value: Any, known: frozenset[str] | None = None) -> bool:
    return isinstance(value, list | tuple | set | frozenset) and all(
        isinstance(v, str) and (known is None or v in known) for v in value)


def _numbers_by_name(value: Any, known: frozenset[str],
                     none_ok: frozenset[str] = frozenset()) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and k in known
        and ((v is None and k in none_ok) or _finite(v) is not None) for k, v in value.items())


def _collaborative_options() -> frozenset[str]:
    import inspect

    from xo_recommender.engine.collaborative import CollaborativeModel

    return frozenset(inspect.signature(CollaborativeModel).parameters)


def _blend_components() -> frozenset[str]:
    from xo_recommender.conf import DEFAULT_BLEND_WEIGHTS

    return frozenset(DEFAULT_BLEND_WEIGHTS)


#: Settings read as a list, a mapping, a flag or a path: (test, what is expected). A wrong
#: one would otherwise pass ``check`` and fail (or, for a flag, silently mean something
#: else: "no" is true) at the first request or rebuild that reads it.
SHAPES: dict[str, tuple[Any, str]] = {
    "BLEND_WEIGHTS": (lambda v: v is None or _numbers_by_name(v, _blend_components()),
                      "None or a mapping of the blend's components (collaborative, "
                      "profile, interest, proximity, prior) to finite numbers"),
    "COLLABORATIVE": (lambda v: _numbers_by_name(v, _collaborative_options(),
                                                 frozenset({"top_k", "threads"})),
                      "a mapping of the collaborative model's options (l2_rel, dropout, "
                      "user_alpha, top_k, …) to numbers"),
    "EXCLUDE_INTERACTED_TYPES": (_texts, "a list of interaction type names"),
    "HEALTH_REQUIRED": (lambda v: _texts(v, frozenset({"database", "cache", "broker"})),
                        'a list of the parts "database", "cache" and "broker"'),
    "DIVERSIFY": (lambda v: isinstance(v, bool), "True or False"),
    "LIVE_ACTIVE_CHECK": (lambda v: isinstance(v, bool), "True or False"),
    "ACTIVE_CHECK_BACKGROUND": (lambda v: isinstance(v, bool), "True or False"),
    "SITE_NAME": (lambda v: v is None or isinstance(v, str), "None or text"),
    "ARTIFACT_DIR": (lambda v: v is None or v is False or isinstance(v, str | os.PathLike),
                     "None (the default folder), False (no files) or a folder's path"),
}


def _throttle_rate_errors() -> list:
    """The API's two scopes' rates as DRF reads them (``"100/min"``): another form
    (``"10/fortnight"``, ``"5 per minute"``) made every request a 500."""
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    from xo_recommender.api.permissions import READ_SCOPE, WRITE_SCOPE

    errors = []
    rates = api_settings.DEFAULT_THROTTLE_RATES or {}
    for scope in (READ_SCOPE, WRITE_SCOPE):
        rate = rates.get(scope) if isinstance(rates, dict) else None
        if rate is None:
            continue
        try:
            number, _ = SimpleRateThrottle.parse_rate(None, rate)
            fits = number >= 0
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            fits = False
        if not fits:
            errors.append(Error(
                f'REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["{scope}"] = {rate!r} is not a '
                "rate DRF can read.", hint='A count, "/" and a period: "100/min", '
                '"10/s", "5000/day" (s, m, h or d is what DRF reads of the period).',
                id="xo_recommender.E014"))
    return errors


#: Numeric settings: (whole number, lowest, highest, None allowed). A wrong one would
#: otherwise pass ``check`` and fail at the first request or rebuild that reads it.
NUMBERS: dict[str, tuple[bool, float | None, float | None, bool]] = {
    "MAX_RESULTS": (True, 1, None, False),
    "MAX_BATCH": (True, 1, None, False),
    "MAX_BODY_BYTES": (True, 1, None, False),
    "KEEP_VERSIONS": (True, 1, None, False),
    "TUNING_MAX_USERS": (True, 1, None, False),
    "ARTIFACT_CHUNK_BYTES": (True, 1, None, False),
    "TUNING_SECONDS": (False, 0, None, False),
    "CACHE_TIMEOUT": (False, 0, None, False),
    "CACHE_BREAKER_SECONDS": (False, 0, None, False),
    "GEO_SCALE_KM": (False, 0.001, None, False),
    "DIVERSITY_LAMBDA": (False, 0, 1, False),
    "ACTIVE_CHECK_INTERVAL_MS": (False, 0, None, True),
    "HALF_LIFE_DAYS": (False, 0, None, True),
    "STATEMENT_TIMEOUT_MS": (False, 0, None, True),
}


def _finite(value: Any) -> float | None:
    """A finite real number of any kind (NumPy's, ``Decimal``) as a float; None for a
    bool (``True`` is an int to Python, not to a setting), text, NaN, infinity, or what
    no float holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):  # 10**400; a complex number
        return None
    return number if math.isfinite(number) else None


@register()
def check_source_mapping(app_configs: Any = None, **kwargs: Any) -> list:
    """Resolve both views against the live models, exactly as the migration will."""
    errors: list = []
    for build in (sources.user_view, sources.business_view):
        try:
            build(global_apps, connections["default"])
        except sources.SourceMappingError as exc:
            for problem in getattr(exc, "problems", [exc]):  # every wrong field at once
                errors.append(Error(str(problem), hint=problem.hint, id=problem.check_id))
    return errors


@register(Tags.database)
def check_views(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list:
    """Report missing or stale views on the databases being checked."""
    from xo_recommender.models import SourceView

    warnings: list = []
    for alias in databases or ():
        connection = connections[alias]
        try:
            if not sources.views_migration_applied(connection):
                continue  # migrate has yet to run; it will create them
            status = sources.view_status(connection, global_apps, SourceView)
        except (sources.SourceMappingError, DatabaseError):
            continue  # a mapping error is reported by check_source_mapping
        for name, state in status.items():
            if state == "missing":
                warnings.append(Warning(
                    f"The view {name} is missing from database {alias!r}.",
                    hint="Run `manage.py recommender_views create`.",
                    id="xo_recommender.W001",
                ))
            elif state == "stale":
                warnings.append(Warning(
                    f"The view {name} in database {alias!r} was built from another field "
                    "mapping than the current settings.",
                    hint="Run `manage.py recommender_views create` to rebuild it.",
                    id="xo_recommender.W002",
                ))
    return warnings


_PER_PROCESS_CACHES = ("django.core.cache.backends.locmem.LocMemCache",)


@register(Tags.caches)
def check_cache_shared(app_configs: Any = None, deploy: bool = False, **kwargs: Any) -> list:
    """A per-process cache breaks invalidation across processes: warn where there are.

    An interaction recorded by a worker (or another web process) bumps a counter in
    its own memory only; the others keep serving the old answer until it expires.
    """
    alias = rec_settings.CACHE_ALIAS
    backend = django_settings.CACHES.get(alias, {}).get("BACKEND", "")
    if backend not in _PER_PROCESS_CACHES:
        return []
    try:
        workers = broker_configured()
    except Exception:  # no usable Celery configuration: no workers either
        workers = False
    if not (workers or deploy):
        return []
    return [Warning(
        f"CACHES[{alias!r}] is {backend.rsplit('.', 1)[-1]}, private to each process, "
        "but " + ("tasks run in worker processes" if workers else
                  "a deployment runs several processes") + ": an invalidation made in one "
        "process is not seen by the others, which serve old recommendations for up to "
        "CACHE_TIMEOUT seconds.",
        hint="Use a shared cache (django-redis) for the recommender, or set "
        f'{SETTING_NAME}["CACHE_TIMEOUT"] to a few seconds.',
        id="xo_recommender.W003",
    )]


@register(Tags.caches, deploy=True)
def check_cache_shared_in_deployment(app_configs: Any = None, **kwargs: Any) -> list:
    if check_cache_shared(app_configs):  # already reported by the ordinary run
        return []
    return check_cache_shared(app_configs, deploy=True)


@register(Tags.compatibility)
def check_schema_class(app_configs: Any = None, **kwargs: Any) -> list:
    """The API's ``@extend_schema`` decorators build on DRF's ``DEFAULT_SCHEMA_CLASS``.

    With DRF's own default (``rest_framework.schemas.openapi.AutoSchema``) the app's
    ``schema/`` and docs pages fail at request time; say so at ``check`` time instead.
    """
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.settings import api_settings

    configured = api_settings.DEFAULT_SCHEMA_CLASS
    if isinstance(configured, type) and issubclass(configured, AutoSchema):
        return []
    name = (f"{configured.__module__}.{configured.__qualname__}"
            if isinstance(configured, type) else repr(configured))  # both are "AutoSchema"
    return [Error(
        f'REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] is {name}; the recommender\'s API schema '
        "needs drf_spectacular.openapi.AutoSchema (or a subclass).",
        hint='Add "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema" to '
        "REST_FRAMEWORK in your settings.",
        id="xo_recommender.E010",
    )]


@register(Tags.staticfiles)
def check_docs_assets(app_configs: Any = None, **kwargs: Any) -> list:
    """Swagger UI and Redoc (``docs/``, ``redoc/``) load their files from the sidecar app."""
    if global_apps.is_installed("drf_spectacular_sidecar"):
        return []
    return [Warning(
        "drf_spectacular_sidecar is not in INSTALLED_APPS: the recommender's docs/ and "
        "redoc/ pages would load without their scripts.",
        hint='Add "drf_spectacular_sidecar" to INSTALLED_APPS (it is installed with '
        "xo-recommender).",
        id="xo_recommender.W010",
    )]


@register()
def check_integer_primary_keys(app_configs: Any = None, **kwargs: Any) -> list:
    """UUID or text keys would pass the mapping checks and fail at the first rebuild."""
    from django.db import models

    errors: list = []
    for setting, label in (("XO_RECOMMENDER_USER_MODEL", rec_settings.user_model),
                           ("XO_RECOMMENDER_BUSINESS_MODEL", rec_settings.business_model)):
        try:
            model = global_apps.get_model(label)
        except (LookupError, ValueError, TypeError, AttributeError):
            continue  # E001 / E002 report it
        pk = model._meta.pk
        if not isinstance(pk, models.IntegerField | models.AutoField):
            errors.append(Error(
                f"{model._meta.label} ({setting}) has a {type(pk).__name__} primary key; "
                "the recommender needs an integer one.",
                hint="Use an AutoField / BigAutoField / IntegerField primary key on the host "
                "model (a UUID can stay as another unique field).",
                id="xo_recommender.E008",
            ))
    return errors


@register()
def check_request_user(app_configs: Any = None, **kwargs: Any) -> list:
    """The API must know which recommender user a signed-in account is (``identity``)."""
    from xo_recommender.identity import same_rows, users_are_accounts

    field = rec_settings.REQUEST_USER_FIELD
    try:
        model = global_apps.get_model(rec_settings.user_model)
        auth = global_apps.get_model(django_settings.AUTH_USER_MODEL)
    except (LookupError, ValueError, TypeError, AttributeError):
        return []  # E002 reports it
    if users_are_accounts():
        return []
    if not field:
        return [Warning(
            f"XO_RECOMMENDER_USER_MODEL ({model._meta.label}) is not AUTH_USER_MODEL "
            f"({auth._meta.label}), and {SETTING_NAME}[\"REQUEST_USER_FIELD\"] is unset: "
            "signed-in users can use neither me/ nor their own recommendations and "
            "interactions (only staff and service accounts can).",
            hint=f"Set {SETTING_NAME}[\"REQUEST_USER_FIELD\"] to the field of "
            f"{model._meta.label} that points at {auth._meta.label} (e.g. \"account\").",
            id="xo_recommender.W011",
        )]
    try:
        relation = model._meta.get_field(field)
    except Exception:  # FieldDoesNotExist, or not a field name at all
        relation = None
    target = getattr(relation, "related_model", None)
    if relation is None or not getattr(relation, "concrete", False) \
            or not (relation.many_to_one or relation.one_to_one) or not relation.unique \
            or target is None or not same_rows(target, auth):
        return [Error(
            f'{SETTING_NAME}["REQUEST_USER_FIELD"] = {field!r} is not a OneToOneField (or '
            f"unique ForeignKey) of {model._meta.label} to {auth._meta.label}: each "
            "signed-in account must be one recommender user at most.",
            hint=f"Name the field of {model._meta.label} that points at the signed-in "
            f"user ({auth._meta.label}).",
            id="xo_recommender.E011",
        )]
    return []


@register()
def check_token_authentication(app_configs: Any = None, **kwargs: Any) -> list:
    """``TokenAuthentication`` looks tokens up in ``rest_framework.authtoken``'s table: without
    the app, any request with an ``Authorization: Token`` header fails inside DRF."""
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.settings import api_settings

    if global_apps.is_installed("rest_framework.authtoken"):
        return []
    try:
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    except ImportError:
        return []  # DRF's own check names a class it cannot import
    if not any(isinstance(c, type) and issubclass(c, TokenAuthentication)
               and c.model is None for c in classes):
        return []
    return [Error(
        "REST_FRAMEWORK lists TokenAuthentication, but rest_framework.authtoken is not in "
        "INSTALLED_APPS: every request to the recommender's API that carries a token "
        "would fail with a 500.",
        hint='Add "rest_framework.authtoken" to INSTALLED_APPS (and migrate), or remove '
        "TokenAuthentication.",
        id="xo_recommender.E013",
    )]
