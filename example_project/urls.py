from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from example_project.xo_black import views
from example_project.xo_black.floor import FloorView

urlpatterns = [
    path("", views.home, name="home"),
    path("act/<int:business_id>/", views.act, name="demo-act"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/recommend/", include("xo_recommender.api.urls")),
    path("bench/floor/", FloorView.as_view(), name="bench-floor"),  # benchmarks/api_load.py
]
