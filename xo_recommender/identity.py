"""Which recommender user a signed-in user is.

Usually the same row: the recommender's users are ``AUTH_USER_MODEL``'s, and the
signed-in user's primary key is theirs. A host whose recommender users are another
model (``XO_RECOMMENDER_USER_MODEL``, e.g. a profile) names the field of that model
that points at the signed-in user (``REQUEST_USER_FIELD``). Without it a signed-in user
is no recommender user at all: one table's id is never taken for another's (account 1
reading profile 1's history).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings

from xo_recommender.conf import settings as rec_settings

__all__ = ["recommender_user_id", "same_rows", "users_are_accounts"]

#: Where the answer is kept on the user object (one per request) after a lookup.
_KEPT = "_xo_recommender_user_id"
_UNSET = object()


def same_rows(a: Any, b: Any) -> bool:
    """Whether two models read the same table's rows (a proxy reads its concrete model's)."""
    return a._meta.concrete_model._meta.label_lower == b._meta.concrete_model._meta.label_lower


def users_are_accounts() -> bool:
    """Whether the recommender's users are the signed-in accounts themselves."""
    return _labels_name_same_rows(rec_settings.user_model, django_settings.AUTH_USER_MODEL)


@lru_cache(maxsize=8)
def _labels_name_same_rows(ours: Any, auth: Any) -> bool:
    """``same_rows`` of two model settings, resolved once per pair (every API request
    asks, and the app registry does not change once loaded)."""
    try:
        return same_rows(apps.get_model(ours), apps.get_model(auth))
    except (LookupError, ValueError, TypeError, AttributeError):
        return False  # a wrong setting: checks name it, and nobody acts for themself


def recommender_user_id(user: Any) -> Any:
    """The recommender user id of a signed-in ``user``, or None (anonymous, or no
    recommender user: no ``REQUEST_USER_FIELD``, or no row points at them)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if users_are_accounts():
        return user.pk
    field = rec_settings.REQUEST_USER_FIELD
    if not field:
        return None
    kept = getattr(user, _KEPT, _UNSET)
    if kept is not _UNSET:
        return kept
    model = apps.get_model(rec_settings.user_model)
    # ``__pk``: the account's key, whatever column the relation points at (``to_field``)
    found = (model._default_manager.filter(**{f"{field}__pk": user.pk})
             .order_by("pk").values_list("pk", flat=True).first())
    setattr(user, _KEPT, found)
    return found
