"""Host-side changes announced over the API: retire the cache, then say whether the row
exists (a row deleted outside the ORM must not keep its cached answers)."""

from __future__ import annotations

from typing import Any

from xo_recommender import cache
from xo_recommender.exceptions import UnknownBusiness, UnknownUser
from xo_recommender.models import RecBusiness, RecUser
from xo_recommender.services._common import bounded, business_pk, user_pk


@bounded
def sync_user(user_id: Any) -> dict[str, Any]:
    """The host changed this user: check they exist, forget what was cached for them."""
    pk = user_pk(user_id, "user_id")
    cache.invalidate_user(pk)  # first: a user deleted by raw SQL is forgotten too
    if not RecUser.objects.filter(pk=pk).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    return {"status": "synced", "user_id": pk}


@bounded
def sync_business(business_id: Any) -> dict[str, Any]:
    """The host changed this business: check it exists, retire the lists that show it."""
    pk = business_pk(business_id)
    cache.invalidate_business(pk)
    if not RecBusiness.objects.filter(pk=pk).exists():
        raise UnknownBusiness(f"No business with id {business_id!r}.")
    return {"status": "synced", "business_id": pk}


@bounded
def clear_user_cache(user_id: Any) -> dict[str, Any]:
    """Forget everything cached for this user (their next answer is computed afresh)."""
    pk = user_pk(user_id, "user_id")
    cache.invalidate_user(pk)
    if not RecUser.objects.filter(pk=pk).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    return {"status": "cleared", "user_id": pk}
