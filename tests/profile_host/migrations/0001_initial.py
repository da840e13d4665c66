import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Profile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("interests", models.JSONField(blank=True, default=list)),
                ("latitude", models.FloatField(blank=True, null=True)),
                ("longitude", models.FloatField(blank=True, null=True)),
                ("is_active", models.BooleanField(default=True)),
                ("handle", models.OneToOneField(
                    null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                    to=settings.AUTH_USER_MODEL, to_field="username")),
                ("account", models.OneToOneField(
                    on_delete=django.db.models.deletion.CASCADE, related_name="profile",
                    to=settings.AUTH_USER_MODEL)),
            ],
        ),
    ]
