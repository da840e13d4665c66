"""XO Black stand-in: the host's own User, Category and Business.

Column and field names deliberately differ from the recommender's (``home_lat``,
``popularity_score``, categories as a many-to-many, tags as JSON) so the demo exercises
the field mapping a real host needs.
"""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    interests = models.JSONField(default=list, blank=True, help_text="List of interest terms.")
    home_latitude = models.FloatField(null=True, blank=True, db_column="home_lat")
    home_longitude = models.FloatField(null=True, blank=True, db_column="home_lng")
    city = models.CharField(max_length=64, blank=True)


class Category(models.Model):
    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Business(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    city = models.CharField(max_length=64, blank=True)
    categories = models.ManyToManyField(Category, related_name="businesses", blank=True)
    tags = models.JSONField(default=list, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    popularity_score = models.FloatField(default=0.0)
    rating = models.FloatField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "businesses"

    def __str__(self) -> str:
        return self.name
