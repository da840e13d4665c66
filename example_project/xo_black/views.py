"""The demo's product page: one user's recommendations as cards on a map, to act on.

This is how a host view uses the app: ``recommend_for(user)`` returns the host's own
Business instances (fetched in one query) with a score, reasons and distance, and
``record_interaction`` stores what the user did, which changes their next answer at
once (no rebuild). Who is shown: the signed-in user; staff may pick anyone with
``?user=``; an anonymous visitor sees ``?user=`` or the first demo user, read-only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from example_project.xo_black.models import Business, Category
from xo_recommender import recommend_for, record_interaction
from xo_recommender.conf import settings as rec_settings
from xo_recommender.exceptions import ModelNotReady, RecommenderError
from xo_recommender.models import Interaction

#: The buttons on a card, and the interaction type each records.
ACTIONS = {"like": "Like", "save": "Save", "hide": "Hide"}
PAGE_SIZE = 9
_SEEN_KEY = "demo_last_shown"


def _demo_users():
    return get_user_model().objects.filter(username__startswith="demo_user_").order_by("pk")


def _chosen_user(request) -> tuple[Any, str | None]:
    """The user whose page this is, and an honest message when the request named none."""
    User = get_user_model()
    raw = request.GET.get("user", "").strip()
    me = request.user if request.user.is_authenticated else None
    if raw and me is not None and not me.is_staff and raw != str(me.pk):
        return me, (f"You are signed in as {me.username}: only staff can look at another "
                    "user's page, so this is yours.")
    if raw:
        if not raw.isdigit():
            return None, f"“{raw}” is not a user id: use a number, e.g. ?user=1."
        chosen = User.objects.filter(pk=int(raw)).first()
        if chosen is None:
            return None, f"There is no user with id {raw}."
        return chosen, None
    return me or _demo_users().first(), None


def _category(request) -> tuple[str | None, str | None]:
    name = request.GET.get("category", "").strip()
    if not name:
        return None, None
    if not Category.objects.filter(name=name).exists():
        return None, f"There is no category “{name}”; showing every category."
    return name, None


def _card_data(picks: list) -> list[dict[str, Any]]:
    """What a card shows; every business's categories in one query."""
    ids = [p.business.pk for p in picks]
    names: dict[int, list[str]] = {i: [] for i in ids}
    rows = Business.categories.through.objects.filter(business_id__in=ids)
    for business_id, name in rows.values_list("business_id", "category__name"):
        names[business_id].append(name)
    return [{
        "business": p.business, "score": p.score, "reasons": p.reasons,
        "distance_km": p.distance_km, "categories": sorted(names[p.business.pk]),
    } for p in picks]


def _may_act_for(request, viewer) -> bool:
    user = request.user
    return user.is_authenticated and viewer is not None and (
        user.pk == viewer.pk or user.is_staff)


def home(request):
    viewer, user_problem = _chosen_user(request)
    category, category_problem = _category(request)
    cards, problem, model_missing = [], None, False
    if viewer is not None:
        try:
            cards = _card_data(recommend_for(viewer, PAGE_SIZE, category=category))
        except ModelNotReady:
            model_missing = True
        except RecommenderError as exc:
            problem = str(exc)
    key = f"{_SEEN_KEY}:{getattr(viewer, 'pk', '')}:{category or ''}"
    previously = set(request.session.get(key, []))
    for card in cards:
        card["is_new"] = bool(previously) and card["business"].pk not in previously
    if viewer is not None:
        request.session[key] = [card["business"].pk for card in cards]
    recent = []
    if viewer is not None:
        recent = list(Interaction.objects.filter(user=viewer).select_related("business")
                      .order_by("-last_seen")[:8])
    weights = rec_settings.INTERACTION_WEIGHTS
    by_type = (Interaction.objects.values("interaction_type").annotate(rows=Count("id"))
               .order_by("interaction_type"))
    map_points = [{
        "name": c["business"].name, "lat": c["business"].latitude,
        "lng": c["business"].longitude, "rank": i + 1,
    } for i, c in enumerate(cards) if c["business"].latitude is not None]
    home_point = None
    if viewer is not None and getattr(viewer, "home_latitude", None) is not None:
        home_point = {"lat": viewer.home_latitude, "lng": viewer.home_longitude}
    return render(request, "xo_black/home.html", {
        "users": get_user_model().objects.count(),
        "businesses": Business.objects.count(),
        "interactions": Interaction.objects.count(),
        "by_type": by_type,
        "viewer": viewer,
        "cards": cards,
        "recent": recent,
        "problem": problem,
        "model_missing": model_missing,
        "user_problem": user_problem,
        "category_problem": category_problem,
        "category": category or "",
        "categories": Category.objects.values_list("name", flat=True),
        "actions": {k: v for k, v in ACTIONS.items() if k in weights},
        "may_act": _may_act_for(request, viewer),
        "picker": _demo_users()[:30] if request.user.is_staff
        or not request.user.is_authenticated else [],
        "map": {"home": home_point, "points": map_points,
                "tiles": getattr(settings, "DEMO_MAP_TILES", "")},
    })


@require_POST
@login_required
def act(request, business_id: int):
    """Record like / save / hide for the page's user, then show the changed page."""
    business = get_object_or_404(Business, pk=business_id)
    kind = request.POST.get("action", "")
    User = get_user_model()
    viewer = get_object_or_404(User, pk=request.POST.get("user") or request.user.pk)
    others = "" if viewer.pk == request.user.pk else str(viewer.pk)
    query = {k: v for k, v in (("user", others),
                               ("category", request.POST.get("category", ""))) if v}
    back = reverse("home") + (f"?{urlencode(query)}" if query else "")
    if not _may_act_for(request, viewer):
        messages.error(request, "You may only act for yourself.")
    elif kind not in ACTIONS or kind not in rec_settings.INTERACTION_WEIGHTS:
        messages.error(request, f"“{kind}” is not something you can do here.")
    else:
        record_interaction(viewer, business, kind)
        verb = {"like": "Liked", "save": "Saved", "hide": "Hid"}[kind]
        messages.success(request, f"{verb} {business.name}: the list below already "
                                  "reflects it (no rebuild needed).")
    return redirect(back)
