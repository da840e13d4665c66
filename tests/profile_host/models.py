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
    #: Another link to the account, by username (``to_field``): the scenario names it as
    #: ``REQUEST_USER_FIELD`` too, where a lookup by the bare field would compare an
    #: account's id with a username.
    handle = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  to_field="username", null=True, related_name="+")

    def __str__(self) -> str:
        return f"profile of {self.account}"
