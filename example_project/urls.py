from django.contrib import admin
from django.urls import include, path

from example_project.xo_black import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/recommend/", include("xo_recommender.api.urls")),
]
