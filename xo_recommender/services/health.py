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


#: Seconds a broker probe's result is reused: opening a broker connection on every GET
#: of ``health/`` would let anyone make the app hammer its broker.
BROKER_PROBE_SECONDS = 5.0
_broker_probe: tuple[float, dict[str, Any]] | None = None


#: A part's statuses that count as working: ``inline`` is the broker when none is
#: configured (tasks run in the process that sends them), reported as such so an
#: operator who meant to have one sees that they have not.
WORKING = ("up", "inline")


def _probe_broker() -> str | None:
    from celery import current_app

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


def _broker_part() -> dict[str, Any]:
    """The broker's part of the report, probed at most every ``BROKER_PROBE_SECONDS``."""
    global _broker_probe
    now = time.monotonic()
    if not broker_configured():
        return {"status": "inline", "latency_ms": 0.0,
                "detail": "no broker configured: tasks run inline"}
    if _broker_probe is not None and now - _broker_probe[0] < BROKER_PROBE_SECONDS:
        return dict(_broker_probe[1])
    part = _timed(_probe_broker)
    _broker_probe = (now, part)
    return dict(part)


def forget_broker_probe() -> None:
    """Probe the broker afresh on the next report (tests)."""
    global _broker_probe
    _broker_probe = None


def public_report(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see: the overall and per-part statuses and the model version;
    latencies and error details are for staff (they can name hosts and accounts)."""
    return {key: {"status": value["status"]} if isinstance(value, dict) else value
            for key, value in report.items()}


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

    parts = {"database": _timed(database), "cache": _timed(cache_check),
             "broker": _broker_part()}
    if parts["cache"]["status"] == "down":
        parts["cache"]["status"] = "degraded"
    required = set(rec_settings.HEALTH_REQUIRED)
    healthy = all(parts[name]["status"] in WORKING for name in required if name in parts)
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
