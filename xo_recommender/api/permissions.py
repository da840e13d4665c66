"""Who may call what, and how often.

* A signed-in user reads only their own recommendations and interactions and records
  interactions only for themselves ("themselves": ``identity.recommender_user_id``).
* Staff, and users holding ``xo_recommender.sync``, act for any user and may call the
  sync and cache endpoints ("service" accounts: the host's backend, a worker).
* Rates are DRF throttle scopes set by the host in ``REST_FRAMEWORK
  ["DEFAULT_THROTTLE_RATES"]``: ``xo_recommender_read`` for GET, ``xo_recommender_write``
  for POST. A scope without a rate is not throttled, so a host that configures nothing
  gets no 500s from a missing rate.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from rest_framework.exceptions import Throttled
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from xo_recommender import cache as rec_cache
from xo_recommender.conf import settings as rec_settings
from xo_recommender.identity import recommender_user_id

#: The permission that lets an account act for any user (see ``Interaction.Meta``).
SYNC_PERMISSION = "xo_recommender.sync"

READ_SCOPE = "xo_recommender_read"
WRITE_SCOPE = "xo_recommender_write"


def acts_for_anyone(user: Any) -> bool:
    """Staff or holder of ``xo_recommender.sync``: may act for every user."""
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_staff or user.has_perm(SYNC_PERMISSION))
    )


def may_act_for(user: Any, user_id: int) -> bool:
    """The user themself (``identity.recommender_user_id``), or a service account."""
    own = recommender_user_id(user)
    if own is not None and own == user_id:
        return True
    return acts_for_anyone(user)


class IsServiceAccount(BasePermission):
    """Sync and cache endpoints: staff or ``xo_recommender.sync`` only."""

    message = f"Only staff or users with the {SYNC_PERMISSION} permission may do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return acts_for_anyone(request.user)


class RecommenderRateThrottle(ScopedRateThrottle):
    """Per-user (or per-IP) rate by scope: read for safe methods, write for the rest.

    The rate is read from DRF's settings at request time (DRF's own throttles freeze it
    at import), so ``override_settings`` works, and an unconfigured scope is unlimited.
    A view may pin a scope with ``throttle_scope``.

    It counts in a fixed window that opens at a client's first request (one round trip
    per request, where DRF's sliding history costs a read and a write), and a cache that
    is down lets requests through instead of failing them (and opens the recommender's
    cache breaker, so a hung cache is not waited for on every request).

    A view with ``throttle_with_answer = True`` whose answers live in the same cache
    has the count deferred into its cache read (:meth:`counted`): the increment travels
    in the answer's round trip and refuses the request before anything is computed.
    """

    #: The request attribute holding a throttle whose count rides on the answer's read.
    DEFERRED = "_xo_recommender_deferred_throttle"

    def allow_request(self, request: Any, view: Any) -> bool:
        self.scope = getattr(view, "throttle_scope", None) or (
            READ_SCOPE if request.method in SAFE_METHODS else WRITE_SCOPE
        )
        self.rate = (api_settings.DEFAULT_THROTTLE_RATES or {}).get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.get_cache_key(request, view)
        if self.key is None or rec_cache.breaker_open():  # the cache failed a moment ago
            return True
        if (getattr(view, "throttle_with_answer", False)
                and rec_settings.CACHE_ALIAS == DEFAULT_CACHE_ALIAS):
            setattr(request, self.DEFERRED, self)
            return True
        count = rec_cache.count_window(self.key, self.duration,
                                       cache=caches[DEFAULT_CACHE_ALIAS])
        return count is None or count <= self.num_requests

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        """DRF's key (scope and account or address) under the site's prefix: two sites
        sharing one cache count their clients apart, as they keep their answers apart."""
        key = super().get_cache_key(request, view)
        return None if key is None else f"{rec_cache.site_prefix()}:{key}"

    def admit(self, count: int | None) -> None:
        """Refuse (429) a request counted beyond the rate; None (cache down) passes."""
        if count is not None and count > self.num_requests:
            raise Throttled(wait=self.wait())

    @classmethod
    def counted(cls, request: Any) -> AbstractContextManager:
        """The block in which a deferred count is taken (nothing when not deferred)."""
        throttle = getattr(request, cls.DEFERRED, None)
        if throttle is None:
            return nullcontext()
        return rec_cache.counting(throttle.key, throttle.duration, throttle.admit)

    def wait(self) -> float | None:
        return float(self.duration) if getattr(self, "duration", None) else None
