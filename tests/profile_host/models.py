from django.conf import settings
from django.db import models


class Profile(models.Model):
    """What the host knows of a member; the signed-in account is ``account``."""

    account = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="profile")
    interests = models.JSONField(default=list, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"profile of {self.account}"
