"""Model versions in the database, and the one this process serves.

Every request asks the database which version is active (one indexed single-row
query) and loads that artifact only when it differs from the one already in memory:
after a rebuild every process serves the new version on its next request, with no
restart and no cross-process signalling.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from django.core.signals import setting_changed

from xo_recommender import cache
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine.model import DEFAULT_BLEND, EngineParams, Recommender
from xo_recommender.exceptions import ModelNotReady
from xo_recommender.models import ModelVersion

_lock = threading.Lock()
_loaded: tuple[int, Recommender] | None = None


def engine_params() -> EngineParams:
    """Training and ranking parameters from the current settings."""
    fixed = rec_settings.BLEND_WEIGHTS
    return EngineParams(
        type_weights=dict(rec_settings.INTERACTION_WEIGHTS),
        half_life_days=rec_settings.HALF_LIFE_DAYS,
        blend_weights=dict(fixed if fixed is not None else DEFAULT_BLEND),
        exclude_types=tuple(rec_settings.EXCLUDE_INTERACTED_TYPES),
        geo_scale_km=float(rec_settings.GEO_SCALE_KM),
        near_km=float(rec_settings.GEO_SCALE_KM),
        diversity_lambda=float(rec_settings.DIVERSITY_LAMBDA),
        collaborative=dict(rec_settings.COLLABORATIVE),
    )


def serving_params(trained: EngineParams) -> EngineParams:
    """The trained model's parameters with the ranking ones taken from current settings.

    Blend weights, exclusions and distances apply at request time, so changing them
    needs no rebuild; what shaped training (type weights, decay) stays as trained.
    """
    now = engine_params()
    # Fixed BLEND_WEIGHTS set after the rebuild win over the learned ranking at once.
    ranking = None if rec_settings.BLEND_WEIGHTS is not None else trained.ranking
    return replace(trained, blend_weights=now.blend_weights, exclude_types=now.exclude_types,
                   ranking=ranking,
                   geo_scale_km=now.geo_scale_km, near_km=now.near_km,
                   diversity_lambda=now.diversity_lambda)


def active_version_id(using: str | None = None) -> int | None:
    qs = ModelVersion.objects.using(using) if using else ModelVersion.objects
    return qs.filter(is_active=True).values_list("pk", flat=True).first()


def publish_active(version_id: int) -> None:
    """Tell every process sharing the cache which version is now active."""
    cache.publish_model_version(version_id)


def active_model() -> tuple[int, Recommender]:
    """``(version id, model)`` of the active version; loads it on first use or change."""
    global _loaded
    version_id = active_version_id()
    if version_id is None:
        raise ModelNotReady(
            "No recommendation model has been built yet. "
            "Run `python manage.py rebuild_recommendations`."
        )
    loaded = _loaded
    if loaded is not None and loaded[0] == version_id:
        return loaded
    with _lock:
        if _loaded is not None and _loaded[0] == version_id:
            return _loaded
        payload = (ModelVersion.objects.filter(pk=version_id)
                   .values_list("artifact", flat=True).first())
        if payload is None:  # pruned between the two queries: ask again
            return active_model()
        model = Recommender.from_bytes(bytes(payload))
        model.params = serving_params(model.params)
        _loaded = (version_id, model)
        return _loaded


def forget_loaded() -> None:
    """Drop the in-memory model (tests, and after settings change)."""
    global _loaded
    with _lock:
        _loaded = None


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("XO_RECOMMENDER"):
        forget_loaded()  # ranking parameters come from settings at load time


setting_changed.connect(_on_setting_changed, dispatch_uid="xo_recommender.artifacts.forget")
