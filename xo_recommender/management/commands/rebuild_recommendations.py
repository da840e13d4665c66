"""``manage.py rebuild_recommendations [--async]``: train and activate a new model version."""

import time

from django.core.management.base import BaseCommand, CommandError

from xo_recommender.exceptions import RebuildFailed


def _still_serving() -> str:
    from xo_recommender.models import ModelVersion

    active = ModelVersion.objects.filter(is_active=True).first()
    return "" if active is None else f" (version {active.pk} keeps serving)"


class Command(BaseCommand):
    help = "Train a new recommendation model from the current data and make it the live one."

    def add_arguments(self, parser):
        parser.add_argument("--async", action="store_true", dest="run_async",
                            help="Enqueue the rebuild on Celery instead of running it here.")

    def handle(self, *args, run_async=False, **options):
        if run_async:
            from kombu.exceptions import OperationalError as BrokerError

            from xo_recommender.tasks import broker_configured, enqueue, rebuild_recommendations

            try:
                result = enqueue(rebuild_recommendations)
            except RebuildFailed as exc:
                raise CommandError(f"{exc}{_still_serving()}") from exc
            except (BrokerError, OSError) as exc:
                raise CommandError(
                    f"Cannot reach the Celery broker ({type(exc).__name__}): nothing was "
                    "enqueued. Run without --async to rebuild in this process.") from None
            except (KeyError, ValueError, ImportError) as exc:
                if not broker_configured():
                    raise  # the inline rebuild's own error, not the broker's
                raise CommandError(  # e.g. an unknown scheme: kombu's "No such transport"
                    f"The Celery broker URL cannot be used ({exc}): nothing was enqueued. "
                    "Fix CELERY_BROKER_URL, or run without --async.") from None
            if broker_configured():
                self.stdout.write(f"Rebuild enqueued as Celery task {result.id}.")
            else:
                self.stdout.write(f"No Celery broker configured: rebuilt inline, "
                                  f"version {result.result} is live.")
            return

        from xo_recommender.services import rebuild

        started = time.perf_counter()

        def progress(message: str) -> None:
            if options["verbosity"] >= 1:
                self.stdout.write(f"[{time.perf_counter() - started:7.1f}s] {message}")

        try:
            version = rebuild(progress=progress)
        except RebuildFailed as exc:
            raise CommandError(f"{exc}{_still_serving()}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"Model version {version.pk} is live: {version.n_users:,} users with "
            f"interactions, "
            f"{version.n_businesses:,} businesses, {version.n_interactions:,} interactions, "
            f"{time.perf_counter() - started:.1f} s, peak memory {version.peak_rss_mb:,.0f} MiB."
        ))
        if options["verbosity"] >= 1:
            from xo_recommender.holdout_report import holdout_table

            for line in holdout_table(version.metrics):
                self.stdout.write(line)
