"""``manage.py recommender_views [status|create|drop]``: manage the SQL views.

Run ``create`` after changing ``XO_RECOMMENDER["USER_FIELDS"]`` / ``["BUSINESS_FIELDS"]``
(the ``xo_recommender.W002`` check says when); ``migrate`` also rebuilds stale views.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from xo_recommender import sources
from xo_recommender.models import SourceView


class Command(BaseCommand):
    help = "Show, (re)create or drop the recommender's SQL views over the host tables."

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="status",
                            choices=["status", "create", "drop"])
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help="Database alias (default: %(default)s).")

    def handle(self, *args, action, database, **options):
        connection = connections[database]
        try:
            if action == "drop":
                with transaction.atomic(using=database):
                    sources.drop_views(connection, SourceView)
                self.stdout.write("Dropped the recommender views.")
                return
            if action == "create":
                with transaction.atomic(using=database):
                    specs = sources.create_views(connection, apps, SourceView)
                for spec in specs:
                    self.stdout.write(self.style.SUCCESS(f"Created {spec.name}"))
                return
            status = sources.view_status(connection, apps, SourceView)
        except sources.SourceMappingError as exc:
            raise CommandError(f"{exc} {exc.hint}") from None
        except sources.SourceColumnsMissing as exc:
            raise CommandError(str(exc)) from None
        for name, state in status.items():
            style = self.style.SUCCESS if state == "ok" else self.style.WARNING
            self.stdout.write(f"{name}: {style(state)}")
        if any(state != "ok" for state in status.values()):
            raise CommandError("Views need rebuilding: run `manage.py recommender_views create`.")
