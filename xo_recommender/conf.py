"""The app's settings: one ``XO_RECOMMENDER`` dict, defaults in one place.

Values are read lazily and cached on the ``settings`` object; the cache is dropped on
Django's ``setting_changed`` signal, so ``override_settings`` in tests just works and
nothing is frozen into module globals at import time.

The host models are named beside the dict, like ``AUTH_USER_MODEL``:

* ``XO_RECOMMENDER_USER_MODEL`` (default: ``AUTH_USER_MODEL``)
* ``XO_RECOMMENDER_BUSINESS_MODEL`` (required, e.g. ``"xo_black.Business"``)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

from xo_recommender.engine.model import DEFAULT_BLEND, DEFAULT_TYPE_WEIGHTS

#: Recommender field -> host field name, for the user view. ``None`` means "the host has
#: no such field": the view then yields an empty term list, NULL coordinates or TRUE.
DEFAULT_USER_FIELDS: dict[str, str | None] = {
    "interests": "interests",
    "latitude": "latitude",
    "longitude": "longitude",
    "is_active": "is_active",
}

#: Recommender field -> host field name, for the business view. Term fields
#: (``categories``, ``tags``) may name a JSON list field or a many-to-many field; for a
#: many-to-many, ``"categories__slug"`` picks the label field of the related model
#: (default ``name``).
DEFAULT_BUSINESS_FIELDS: dict[str, str | None] = {
    "name": "name",
    "categories": "categories",
    "tags": "tags",
    "latitude": "latitude",
    "longitude": "longitude",
    "popularity": "popularity",
    "rating": "rating",
    "is_active": "is_active",
}

#: Relative strength of each interaction type when training (engine defaults). Stored
#: interactions keep the caller's own weight; these multiply it at training time, so
#: changing them needs a rebuild, not a data migration.
DEFAULT_INTERACTION_WEIGHTS: dict[str, float] = dict(DEFAULT_TYPE_WEIGHTS)

#: How much each scoring component counts in the blend (each is normalised first):
#: collaborative (people who engaged with what you did also engaged with…), profile
#: (similar in categories/tags to what you engaged with), interest (your stated
#: interests), proximity (near you or the point asked for), prior (popular, well rated).
DEFAULT_BLEND_WEIGHTS: dict[str, float] = dict(DEFAULT_BLEND)

DEFAULTS: dict[str, Any] = {
    "USER_FIELDS": DEFAULT_USER_FIELDS,
    # When the recommender's users are not AUTH_USER_MODEL (XO_RECOMMENDER_USER_MODEL is
    # e.g. a profile): the field of that model pointing at the signed-in user (a
    # OneToOneField, or unique ForeignKey, to AUTH_USER_MODEL), so the API knows who "me" is.
    # Unset, a signed-in user acts for nobody; staff and service accounts as before.
    "REQUEST_USER_FIELD": None,
    "BUSINESS_FIELDS": DEFAULT_BUSINESS_FIELDS,
    "INTERACTION_WEIGHTS": DEFAULT_INTERACTION_WEIGHTS,
    # Types after which a business is not recommended again to that user; a view is no
    # reason to hide, and a purchase may be repeated. A type with a negative weight
    # (e.g. "hide": -1) always hides.
    "EXCLUDE_INTERACTED_TYPES": ["like", "save", "share"],
    # Fixed weights of the scoring components (keys as in DEFAULT_BLEND_WEIGHTS). Unset
    # (None, the default), every rebuild learns how to weigh its features from a
    # temporal holdout of the site's own data and keeps a baseline where it does better.
    "BLEND_WEIGHTS": None,
    # Seconds a rebuild may spend learning the ranking and measuring it (the holdout
    # model's own training comes on top). Less data than that needs takes less.
    "TUNING_SECONDS": 45.0,
    # The site's name in reasons such as "Popular on <name>" (None: "this site").
    "SITE_NAME": None,
    # Users measured (and, as many again, learned from) on the holdout at most.
    "TUNING_MAX_USERS": 2000,
    # Interactions lose half their weight every this many days (None: no decay).
    "HALF_LIFE_DAYS": 90.0,
    # Distance at which proximity has decayed to 1/e, and "near you" in reasons.
    "GEO_SCALE_KM": 10.0,
    # Whether results are re-ranked for category diversity (MMR), and how strongly:
    # 1.0 keeps relevance order, lower values favour variety.
    "DIVERSIFY": False,
    "DIVERSITY_LAMBDA": 0.7,
    # The largest page a caller may ask for (limit), and offset + limit at most 10×.
    "MAX_RESULTS": 100,
    # Model versions kept in the database (the active one always is).
    "KEEP_VERSIONS": 3,
    # Local directory of memory-mapped model files, shared by the machine's processes
    # (None: a folder in the system's temp dir; False: load each model into memory).
    "ARTIFACT_DIR": None,
    # Largest piece of a model artifact stored in one database value; PostgreSQL refuses
    # a value near 1 GB, and a piece is all a rebuild or a download holds at once.
    "ARTIFACT_CHUNK_BYTES": 64 * 2**20,
    # Keyword arguments of the collaborative model (see engine/collaborative.py).
    "COLLABORATIVE": {},
    # Parts that must be up for the health endpoint to answer 200 (others are reported).
    "HEALTH_REQUIRED": ["database"],
    # Most interactions accepted in one POST to the interaction endpoint.
    "MAX_BATCH": 100,
    # Largest request body the API parses (bytes); a larger one is answered 413.
    "MAX_BODY_BYTES": 256 * 1024,
    # Longest a recommender query may run on PostgreSQL (ms) before it is cancelled and
    # the API answers 503; 0 or None leaves the database's own setting.
    "STATEMENT_TIMEOUT_MS": 5000,
    # After a cache error or timeout, skip the cache this many seconds (answers are
    # computed) instead of paying the timeout on every request.
    "CACHE_BREAKER_SECONDS": 5.0,
    # Whether every answer, cached or not, checks its businesses are still active in the
    # host table (one primary-key query): a business deactivated or deleted without a
    # Django signal (queryset.update, raw SQL) is then never listed. False: rely on the
    # signals, and such a change shows only when the entry expires (CACHE_TIMEOUT).
    "LIVE_ACTIVE_CHECK": True,
    # How old (ms) the active flags a cache hit trusts may be. Each process reads the
    # flags of the businesses it shows in one query at most this often, so a business
    # deactivated or deleted without a signal may still be listed this long after its
    # commit (through the ORM: not at all). 0: one primary-key query on every hit.
    "ACTIVE_CHECK_INTERVAL_MS": 1000,
    # Whether a thread of each process reads those flags again before they reach that
    # age, so that a cache hit asks the database nothing (it still reads a business the
    # process has not shown yet, or flags the thread failed to keep young). False: the
    # hits read them, a slice at a time.
    "ACTIVE_CHECK_BACKGROUND": True,
    # Which entry of ``CACHES`` holds recommendation results.
    "CACHE_ALIAS": "default",
    # Seconds a cached result lives; the versioned keys make it safe to be generous.
    "CACHE_TIMEOUT": 300,
}

#: Settings whose value is a mapping merged key by key over the default, so a host
#: overrides only the fields whose names differ.
MERGED_SETTINGS = frozenset({"USER_FIELDS", "BUSINESS_FIELDS", "BLEND_WEIGHTS"})

SETTING_NAME = "XO_RECOMMENDER"
USER_MODEL_SETTING = "XO_RECOMMENDER_USER_MODEL"
BUSINESS_MODEL_SETTING = "XO_RECOMMENDER_BUSINESS_MODEL"


class RecommenderSettings:
    """Attribute access to ``XO_RECOMMENDER`` with defaults, cached until a setting changes."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{SETTING_NAME} has no setting {name!r}")
        value = self._read(name)
        setattr(self, name, value)  # cached until reload()
        return value

    def _read(self, name: str) -> Any:
        configured = self.user_settings()
        default = DEFAULTS[name]
        if name == "BLEND_WEIGHTS":  # unset: learned; set: merged over the old defaults
            override = configured.get(name)
            return ({**DEFAULT_BLEND_WEIGHTS, **override} if isinstance(override, dict)
                    else override)
        if name in MERGED_SETTINGS:
            override = configured.get(name) or {}
            return {**default, **override} if isinstance(override, dict) else override
        return configured.get(name, default)

    @staticmethod
    def user_settings() -> dict[str, Any]:
        value = getattr(django_settings, SETTING_NAME, None)
        return value if isinstance(value, dict) else {}

    @property
    def user_model(self) -> str:
        """``app_label.ModelName`` of the host user model."""
        return getattr(django_settings, USER_MODEL_SETTING, None) or django_settings.AUTH_USER_MODEL

    @property
    def business_model(self) -> str:
        """``app_label.ModelName`` of the host business model (empty when unset)."""
        return getattr(django_settings, BUSINESS_MODEL_SETTING, None) or ""

    def reload(self) -> None:
        """Forget cached values; the next access reads Django's settings again."""
        for name in DEFAULTS:
            self.__dict__.pop(name, None)


settings = RecommenderSettings()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME or setting.startswith(SETTING_NAME + "_"):
        settings.reload()


setting_changed.connect(_on_setting_changed, dispatch_uid="xo_recommender.conf.reload")
