"""The demo's one page: what the database holds, so a newcomer sees the seed worked."""

from django.db.models import Count
from django.shortcuts import render

from example_project.xo_black.models import Business, Category, User
from xo_recommender.models import Interaction


def home(request):
    top = (
        Business.objects.filter(is_active=True)
        .order_by("-popularity_score")
        .prefetch_related("categories")[:12]
    )
    by_type = (
        Interaction.objects.values("interaction_type")
        .annotate(rows=Count("id"))
        .order_by("interaction_type")
    )
    return render(request, "xo_black/home.html", {
        "users": User.objects.count(),
        "businesses": Business.objects.count(),
        "categories": Category.objects.count(),
        "interactions": Interaction.objects.count(),
        "by_type": by_type,
        "top": top,
    })
