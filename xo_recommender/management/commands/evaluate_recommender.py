"""``manage.py evaluate_recommender``: quality figures, from files or the live database.

``--live`` runs the rebuild's own temporal evaluation on the site's database (each
user's latest discoveries held out, the ranking learned on the rest and measured
beside the baselines through the served path) and prints the table, activating
nothing. ``--train PATH --test PATH`` scores files instead:

Trains the serving engine (same code, same parameters as production, from settings)
on the train file and scores the test file with the protocol of
``xo_recommender.engine.evaluation``: train items are excluded, only users with test
items count, top-k. Files are TSV with the header ``user_id item_id rating timestamp``
or RecBole atomic ``.inter`` files; ``--items`` reads a RecBole ``.item`` file whose
genres become categories.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from xo_recommender.artifacts import engine_params
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine import datasets
from xo_recommender.engine.evaluation import MostPopular, evaluate
from xo_recommender.engine.matrix import IdIndex
from xo_recommender.engine.offline import ServingEngine, split_order

REPORTED = ("precision", "recall", "ndcg", "map", "map_minK", "hr", "coverage")


def read_interactions(path: str) -> datasets.Interactions:
    if path.endswith(".inter"):
        return datasets.read_atomic_inter(path)
    return datasets.read_tsv(path)


def _read(reader, path: str):
    """``reader(path)``, any failure to read the file one line naming it."""
    try:
        return reader(path)
    except datasets.DatasetError as exc:
        raise CommandError(str(exc)) from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text") from None
    except (OSError, ValueError, OverflowError) as exc:
        raise CommandError(f"{path}: {exc}") from None


class Command(BaseCommand):
    help = "Train the recommender on a train split and report top-k quality on a test split."

    def add_arguments(self, parser):
        parser.add_argument("--live", action="store_true",
                            help="Evaluate on this site's database (nothing is activated).")
        parser.add_argument("--train", help="TSV or RecBole .inter file.")
        parser.add_argument("--test", help="TSV or RecBole .inter file.")
        parser.add_argument("--items", help="RecBole .item file: genres become categories.")
        parser.add_argument("--k", type=int, default=10, help="List length (default 10).")
        parser.add_argument("--format", choices=["json", "table"], default="table")
        parser.add_argument("--baseline", choices=["popular"],
                            help="Also score a baseline on the same split.")

    def handle(self, *args, live, train, test, items, k, format, baseline, **options):
        if live:
            given = [flag for flag, value in (("--train", train), ("--test", test),
                                              ("--items", items), ("--baseline", baseline))
                     if value]
            if given:
                raise CommandError(f"--live evaluates the database: leave out "
                                   f"{', '.join(given)}")
            return self.live(format)
        if not (train and test):
            raise CommandError("give --train and --test files, or --live for the database")
        if k < 1:
            raise CommandError("--k must be at least 1")
        train_data = _read(read_interactions, train)
        test_data = _read(read_interactions, test)
        categories = _read(datasets.read_atomic_items, items) if items else {}
        if not len(train_data):
            raise CommandError(f"{train}: no interactions")
        item_ids = IdIndex.from_ids(train_data.item_id).ids  # evaluate()'s column order

        learn = rec_settings.BLEND_WEIGHTS is None
        split_by = split_order(train_data, test_data)  # the learning holds out the same way

        def engine():
            return ServingEngine(engine_params(), item_ids=item_ids, item_categories=categories,
                                 learn_from=train_data if learn else None,
                                 tuning_seconds=float(rec_settings.TUNING_SECONDS),
                                 split_by=split_by)

        result = evaluate(train_data, test_data, k=k, model_factory=engine,
                          baseline=MostPopular if baseline == "popular" else None)
        if format == "json":
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        rows = [("engine", result)]
        if "baseline" in result:
            rows.append((f"baseline:{baseline}", result["baseline"]))
        header = f"{'model':<18}" + "".join(f"{m + '@' + str(k):>12}" for m in REPORTED)
        self.stdout.write(header + f"{'fit s':>9}")
        for name, r in rows:
            self.stdout.write(f"{name:<18}" + "".join(f"{r[m]:>12.4f}" for m in REPORTED)
                              + f"{r['fit_seconds']:>9.2f}")
        self.stdout.write(f"users evaluated: {result['users']}")

    def live(self, format: str) -> None:
        """The rebuild's holdout on the live data, printed, with nothing activated."""
        from xo_recommender import snapshot
        from xo_recommender.engine.selfeval import learn_ranking
        from xo_recommender.holdout_report import holdout_table

        params = engine_params()
        catalogue = snapshot.load_catalogue()
        events = snapshot.load_interactions(tuple(params.type_weights))
        if not len(catalogue) or not len(events):
            raise CommandError("no businesses or no interactions in the database yet")
        users = snapshot.load_users(events.user_ids)
        evaluation = learn_ranking(
            catalogue, events, users, params,
            budget_seconds=float(rec_settings.TUNING_SECONDS),
            max_users=int(rec_settings.TUNING_MAX_USERS),
            progress=lambda m: self.stderr.write(m) if format == "table" else None)
        metrics = evaluation.as_metrics()
        if format == "json":
            self.stdout.write(json.dumps(metrics, sort_keys=True))
            return
        for line in holdout_table(metrics):
            self.stdout.write(line)
