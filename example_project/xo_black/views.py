"""The demo's page: what the database holds, and one user's recommendations with reasons.

This is how a host view uses the app: ``recommend_for(user)`` returns the host's own
Business instances (fetched in one query) with a score, reasons and distance.
"""

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.shortcuts import render

from example_project.xo_black.models import Business, Category
from xo_recommender import recommend_for
from xo_recommender.exceptions import RecommenderError
from xo_recommender.models import Interaction


def home(request):
    User = get_user_model()
    viewer = request.user if request.user.is_authenticated else None
    if viewer is None and request.GET.get("user", "").isdigit():
        viewer = User.objects.filter(pk=int(request.GET["user"])).first()
    if viewer is None:
        viewer = User.objects.filter(username__startswith="demo_user_").order_by("pk").first()
    recommendations, problem = [], None
    if viewer is not None:
        try:
            recommendations = recommend_for(viewer, 10, category=request.GET.get("category"))
        except RecommenderError as exc:
            problem = str(exc)
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
        "viewer": viewer,
        "recommendations": recommendations,
        "problem": problem,
    })
