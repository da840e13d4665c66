"""Optional checks for django-health-check, over ``services.health()``.

Importing this module is always safe: without django-health-check installed it defines
nothing but ``available = False``. With it installed, two checks exist:

* ``RecommenderHealthCheck`` — fails when a part listed in ``HEALTH_REQUIRED`` is down
  (the same rule as ``GET api/recommend/health/``).
* ``RecommenderModelHealthCheck`` — fails while no model version has been built
  (every recommendation answers 503 until ``manage.py rebuild_recommendations`` runs).

django-health-check 4 lists check classes in the host's configuration; version 3 needs
``plugin_dir.register(RecommenderHealthCheck)`` in an ``AppConfig.ready()``.
"""

from __future__ import annotations

from typing import Any

try:  # django-health-check is optional
    from health_check.exceptions import ServiceUnavailable
except ImportError:  # pragma: no cover - exercised when the package is absent
    ServiceUnavailable = None

try:  # version 4: dataclass checks with run()
    from health_check.base import HealthCheck as _Base

    _API = 4
except ImportError:
    try:  # version 3: backends with check_status()
        from health_check.backends import BaseHealthCheckBackend as _Base

        _API = 3
    except ImportError:
        _Base, _API = None, 0

#: Whether django-health-check is installed and the classes below exist.
available = ServiceUnavailable is not None and _Base is not None


def recommender_problem() -> str | None:
    """Why the recommender is unhealthy (a required part down), or None."""
    from xo_recommender import services
    from xo_recommender.services.health import WORKING

    healthy, report = services.health()
    if healthy:
        return None
    down = [name for name, part in report.items()
            if isinstance(part, dict) and part.get("status") not in WORKING]
    return "Recommender parts down: " + ", ".join(down or ["unknown"])


def model_problem() -> str | None:
    """Why no model is served (none built yet), or None."""
    from xo_recommender import services

    _, report = services.health()
    if report.get("model_version") is None:
        return "No recommendation model: run `python manage.py rebuild_recommendations`."
    return None


if available:

    class _Check(_Base):  # type: ignore[misc, valid-type]
        """Runs ``problem()`` and reports its message as ``ServiceUnavailable``."""

        critical_service = True

        @staticmethod
        def problem() -> str | None:  # pragma: no cover - overridden
            return None

        def run(self) -> None:
            import threading

            from django.db import connections

            try:
                message = self.problem()
            finally:
                # django-health-check runs sync checks in worker threads; a connection
                # opened there would outlive the check.
                if threading.current_thread() is not threading.main_thread():
                    connections.close_all()
            if message:
                raise ServiceUnavailable(message)

        def check_status(self, *args: Any, **kwargs: Any) -> None:
            self.run()

        def identifier(self) -> str:
            return type(self).__name__

    class RecommenderHealthCheck(_Check):
        """Database (and whatever ``HEALTH_REQUIRED`` names) reachable."""

        problem = staticmethod(recommender_problem)

    class RecommenderModelHealthCheck(_Check):
        """A model version is active, so recommendations can be served."""

        problem = staticmethod(model_problem)
