from django.apps import AppConfig


class XoBlackConfig(AppConfig):
    name = "example_project.xo_black"
    label = "xo_black"
    verbose_name = "XO Black (demo host)"
    default_auto_field = "django.db.models.BigAutoField"
