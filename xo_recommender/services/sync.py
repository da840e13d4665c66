"""Host-side changes announced over the API: check the row exists, retire its cache."""

from __future__ import annotations

from typing import Any

from xo_recommender import cache
from xo_recommender.exceptions import UnknownBusiness, UnknownUser
from xo_recommender.models import RecBusiness, RecUser
from xo_recommender.services._common import _pk, bounded


@bounded
def sync_user(user_id: Any) -> dict[str, Any]:
    """The host changed this user: check they exist, forget what was cached for them."""
    rec_user = RecUser.objects.filter(pk=_pk(user_id)).first()
    if rec_user is None:
        raise UnknownUser(f"No user with id {user_id!r}.")
    cache.invalidate_user(rec_user.pk)
    return {"status": "synced", "user_id": rec_user.pk}


@bounded
def sync_business(business_id: Any) -> dict[str, Any]:
    """The host changed this business: check it exists, retire the lists that show it."""
    if not RecBusiness.objects.filter(pk=_pk(business_id)).exists():
        raise UnknownBusiness(f"No business with id {business_id!r}.")
    cache.invalidate_business(_pk(business_id))
    return {"status": "synced", "business_id": int(_pk(business_id))}


@bounded
def clear_user_cache(user_id: Any) -> dict[str, Any]:
    """Forget everything cached for this user (their next answer is computed afresh)."""
    if not RecUser.objects.filter(pk=_pk(user_id)).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    cache.invalidate_user(_pk(user_id))
    return {"status": "cleared", "user_id": _pk(user_id)}
