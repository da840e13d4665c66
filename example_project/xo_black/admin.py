from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from example_project.xo_black.models import Business, Category, User
from xo_recommender.admin import RecommendationPreviewMixin


@admin.register(User)
class XoUserAdmin(RecommendationPreviewMixin, UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("XO Black", {
        "fields": ("interests", "city", "home_latitude", "home_longitude"),
    }))
    list_display = ("username", "city", "is_active", "is_staff")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    list_display = ("name", "city", "rating", "popularity_score", "is_active")
    list_filter = ("is_active", "city", "categories")
    search_fields = ("name", "slug")
    filter_horizontal = ("categories",)
