"""Health: database, cache and broker, each with its status and latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connections, router

from xo_recommender import artifacts, cache
from xo_recommender.broker import broker_configured
from xo_recommender.conf import settings as rec_settings
from xo_recommender.models import ModelVersion


def _timed(check: Callable[[], Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
        status = "up"
    except Exception as exc:  # a health check reports any failure, it never raises
        detail, status = f"{type(exc).__name__}: {exc}", "down"
    result = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail not in (None, True):
        result["detail"] = detail
    return result


def health() -> tuple[bool, dict[str, Any]]:
    """``(healthy, report)``: database, cache and broker with status and latency.

    Healthy when every part in ``HEALTH_REQUIRED`` is up; the others are reported (a
    cache that is down means slower answers, not failed ones: "degraded").
    """
    def database():
        with connections[router.db_for_read(ModelVersion)].cursor() as cursor:
            cursor.execute("SELECT 1")
        return None

    def cache_check():
        ok, _ = cache.healthy()
        if not ok:
            raise ConnectionError("cache unreachable")

    def broker():
        if not broker_configured():
            return "no broker configured: tasks run inline"
        from celery import current_app

        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return None

    parts = {"database": _timed(database), "cache": _timed(cache_check),
             "broker": _timed(broker)}
    if parts["cache"]["status"] == "down":
        parts["cache"]["status"] = "degraded"
    required = set(rec_settings.HEALTH_REQUIRED)
    healthy = all(parts[name]["status"] == "up" for name in required if name in parts)
    try:
        version = artifacts.active_version_id() if parts["database"]["status"] == "up" else None
    except Exception:
        version = None
    report = {"status": "ok" if healthy else "unavailable", **parts, "model_version": version,
              "serving": _serving(version)}
    return healthy, report


def _serving(version_id: int | None) -> str | None:
    """Which ranking the live version serves: "model", a baseline the guardrail kept
    (e.g. "popular_nearby"), "fixed BLEND_WEIGHTS", or "defaults" on too little data."""
    if version_id is None:
        return None
    try:
        metrics = (ModelVersion.objects.filter(pk=version_id)
                   .values_list("metrics", flat=True).first()) or {}
    except Exception:  # health reports, it never raises
        return None
    return metrics.get("serving") if isinstance(metrics, dict) else None
