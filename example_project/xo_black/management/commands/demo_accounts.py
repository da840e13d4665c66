"""``manage.py demo_accounts``: the demo's sign-ins, created if missing, then printed.

``make demo`` runs it after seeding so a newcomer can sign in at once: a superuser for
``/admin/`` and for looking at any user's page, a demo user for the page and the
browsable API, and that user's API token for programs (``Authorization: Token …``).
Re-running keeps the same accounts and token; the passwords are reset to the printed
ones. Demo only: the passwords are public.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

ADMIN_USERNAME = "demo_admin"
ADMIN_PASSWORD = "demo-admin"
DEMO_PASSWORD = "demo"


class Command(BaseCommand):
    help = "Create (or reset) the demo's superuser and a demo user's API token; print sign-ins."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="Where the demo is served (default: %(default)s).")

    def handle(self, *args, base_url: str, **options):
        User = get_user_model()
        demo_user = User.objects.filter(username__startswith="demo_user_").order_by("pk").first()
        if demo_user is None:
            raise CommandError("No demo users yet: run `python manage.py seed_demo` first.")
        admin, _ = User.objects.get_or_create(username=ADMIN_USERNAME, defaults={
            "email": "admin@example.com", "first_name": "Demo", "last_name": "Admin"})
        admin.is_staff = admin.is_superuser = admin.is_active = True
        admin.set_password(ADMIN_PASSWORD)
        admin.save()
        demo_user.set_password(DEMO_PASSWORD)
        demo_user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=demo_user)
        base = base_url.rstrip("/")
        lines = [
            f"  Demo page      {base}/",
            f"  Sign in        {base}/accounts/login/",
            f"    as a user    {demo_user.username} / {DEMO_PASSWORD}   (any demo_user_NNNNNN, "
            "same password)",
            f"    as admin     {ADMIN_USERNAME} / {ADMIN_PASSWORD}   (also {base}/admin/; "
            "picks any user's page)",
            f"  API            {base}/api/recommend/   (docs: {base}/api/recommend/docs/)",
            f"    token        {token.key}   (user {demo_user.username}, id {demo_user.pk})",
            f'    try          curl -H "Authorization: Token {token.key}" '
            f"{base}/api/recommend/me/",
        ]
        self.stdout.write("\n".join(lines))
