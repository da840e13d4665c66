from django.contrib import admin
from django.urls import include, path

from example_project.xo_black import views
from example_project.xo_black.floor import FloorView

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/recommend/", include("xo_recommender.api.urls")),
    path("bench/floor/", FloorView.as_view(), name="bench-floor"),  # benchmarks/api_load.py
]
