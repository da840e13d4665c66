"""record_interaction(s): upsert semantics, validation, cascades and concurrency."""

import math
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from tests.factories import BusinessFactory, UserFactory
from xo_recommender import record_interaction
from xo_recommender.models import Interaction
from xo_recommender.services import InteractionEvent, record_interactions


@pytest.mark.django_db
def test_first_record_creates_one_row(user, business):
    row = record_interaction(user, business, "save", 2.5)
    assert (row.user_id, row.business_id, row.interaction_type) == (user.pk, business.pk, "save")
    assert row.count == 1 and row.weight == 2.5
    assert row.first_seen == row.last_seen


@pytest.mark.django_db
def test_repeat_increments_count_and_moves_weight_and_last_seen(user, business):
    t0 = timezone.now() - timedelta(days=3)
    record_interaction(user, business, "view", 1.0, at=t0)
    row = record_interaction(user.pk, business.pk, "view", 0.5, at=t0 + timedelta(days=1))
    assert Interaction.objects.count() == 1
    assert row.count == 2
    assert row.weight == 0.5
    assert row.first_seen == t0
    assert row.last_seen == t0 + timedelta(days=1)

    # a late-arriving older event still counts, but does not rewind last_seen or weight
    row = record_interaction(user, business, "view", 9.0, at=t0 - timedelta(days=1))
    assert row.count == 3
    assert row.weight == 0.5
    assert row.first_seen == t0 - timedelta(days=1)
    assert row.last_seen == t0 + timedelta(days=1)


@pytest.mark.django_db
def test_types_are_separate_rows(user, business):
    for itype in ("view", "like", "save", "purchase", "share"):
        record_interaction(user, business, itype)
    assert Interaction.objects.filter(user=user).count() == 5


@pytest.mark.django_db
def test_batch_folds_repeats_of_one_key(user, business):
    other = BusinessFactory()
    n = record_interactions([
        InteractionEvent(user.pk, business.pk, "view"),
        InteractionEvent(user.pk, business.pk, "view", weight=2.0),
        InteractionEvent(user.pk, other.pk, "like"),
    ])
    assert n == 3
    assert Interaction.objects.get(business=business).count == 2
    assert Interaction.objects.get(business=other).interaction_type == "like"


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs, field", [
    ({"interaction_type": "teleport"}, "interaction_type"),
    ({"weight": math.nan}, "weight"),
    ({"weight": math.inf}, "weight"),
    ({"weight": -1.0}, "weight"),
    ({"weight": "heavy"}, "weight"),
    ({"count": 0}, "count"),
])
def test_bad_values_raise_validation_error_and_write_nothing(user, business, kwargs, field):
    record_interaction(user, business, "like", 1.0)
    args = {"interaction_type": "view", "weight": 1.0, **kwargs}
    with pytest.raises(ValidationError) as excinfo:
        record_interaction(user, business, args.pop("interaction_type"), **args)
    assert field in excinfo.value.message_dict
    assert list(Interaction.objects.values_list("interaction_type", "count")) == [("like", 1)]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["user", "business"])
def test_unknown_user_or_business_is_a_validation_error(user, business, who):
    ids = {"user": user.pk, "business": business.pk, who: 987654321}
    with pytest.raises(ValidationError) as excinfo:
        record_interaction(ids["user"], ids["business"], "view")
    assert f"{who}_id" in excinfo.value.message_dict
    assert "987654321" in str(excinfo.value)
    assert not Interaction.objects.exists()


@pytest.mark.django_db
def test_one_bad_event_in_a_batch_writes_none_of_it(user, business):
    with pytest.raises(ValidationError):
        record_interactions([
            InteractionEvent(user.pk, business.pk, "view"),
            InteractionEvent(user.pk, business.pk, "like", weight=-3),
        ])
    assert not Interaction.objects.exists()


@pytest.mark.django_db
def test_deleting_host_user_or_business_deletes_their_interactions():
    alice, bob = UserFactory(), UserFactory()
    cafe, bar = BusinessFactory(), BusinessFactory()
    for u in (alice, bob):
        for b in (cafe, bar):
            record_interaction(u, b, "view")
    alice.delete()
    assert set(Interaction.objects.values_list("user_id", flat=True)) == {bob.pk}
    cafe.delete()
    assert list(Interaction.objects.values_list("user_id", "business_id")) == [(bob.pk, bar.pk)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_records_of_one_key_lose_nothing():
    user, business = UserFactory(), BusinessFactory()
    threads, per_thread = 8, 15
    barrier = threading.Barrier(threads)
    errors = []

    def worker():
        try:
            barrier.wait()
            for _ in range(per_thread):
                record_interaction(user.pk, business.pk, "view")
        except Exception as exc:  # surfaced below, with the thread's error
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    rows = list(Interaction.objects.values_list("count", flat=True))
    assert rows == [threads * per_thread]


@pytest.mark.django_db(transaction=True)
def test_batches_of_the_same_rows_in_opposite_orders_never_deadlock():
    """Rows are written in one order whatever order a batch lists them in: two writers
    of the same rows, listed backwards, take their row locks in the same order."""
    users, shops = UserFactory.create_batch(40), BusinessFactory.create_batch(50)
    events = [InteractionEvent(u.pk, b.pk, "view") for u in users for b in shops]
    record_interactions(events)
    barrier = threading.Barrier(2)
    errors = []

    def worker(batch):
        try:
            barrier.wait()
            for _ in range(5):
                record_interactions(batch)
        except Exception as exc:  # surfaced below, with the thread's error
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(b,)) for b in (events, events[::-1])]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    assert set(Interaction.objects.values_list("count", flat=True)) == {11}


@pytest.mark.django_db
def test_the_table_has_the_indexes_the_recommender_reads_by():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Interaction._meta.db_table)
    indexed = {tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]}
    assert ("user_id", "business_id", "interaction_type") in indexed  # by user, unique key
    assert ("business_id",) in indexed
    assert ("last_seen",) in indexed
    assert ("user_id", "last_seen") in indexed


@pytest.mark.django_db
@pytest.mark.parametrize("values", [{"weight": math.inf}, {"weight": math.nan},
                                    {"weight": 5e9}, {"weight": -1.0}, {"count": 0}])
def test_the_table_refuses_what_record_interaction_refuses(user, business, values):
    """Written past the service (the ORM, an admin, raw SQL), an out-of-range weight or
    count is refused by the database itself: NaN and infinity too."""
    row = {"weight": 1.0, "count": 1, "first_seen": timezone.now(),
           "last_seen": timezone.now(), **values}
    with pytest.raises(IntegrityError), transaction.atomic():
        Interaction.objects.create(user=user, business=business, interaction_type="view",
                                   **row)
    assert not Interaction.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_brings_rows_written_past_the_checks_into_range():
    from django.db.migrations.executor import MigrationExecutor

    user, shops = UserFactory(), BusinessFactory.create_batch(6)
    app, before = "xo_recommender", "0006_ingested_batches"
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes(app)
    executor.migrate([(app, before)])
    # each (weight, count) written, and what the migration makes of it; a row out of
    # range on both counts is mended in one update (a check refuses it half-mended)
    bad = [((5e9, 1), (1e6, 1)), ((math.inf, 1), (1e6, 1)), ((2.0, 0), (2.0, 1)),
           ((5e9, 0), (1e6, 1))]
    if connection.vendor == "postgresql":  # SQLite stores NaN as NULL: never was there
        bad += [((math.nan, 3), (1.0, 3)), ((math.nan, 0), (1.0, 1))]
    try:
        old = MigrationExecutor(connection).loader.project_state([(app, before)]).apps
        now = timezone.now()
        for shop, ((weight, count), _) in zip(shops, bad, strict=False):
            old.get_model(app, "Interaction").objects.create(
                user_id=user.pk, business_id=shop.pk, interaction_type="view",
                weight=weight, count=count, first_seen=now, last_seen=now)
    finally:
        MigrationExecutor(connection).migrate(latest)
    stored = dict(Interaction.objects.values_list("business_id", "weight"))
    counts = dict(Interaction.objects.values_list("business_id", "count"))
    assert [(stored[s.pk], counts[s.pk]) for s in shops[:len(bad)]] == [
        mended for _, mended in bad]


MIGRATION_0007 = "0007_interaction_weight_and_count_ranges"
CHECKS = ("xo_rec_interaction_weight_range", "xo_rec_interaction_count_gte_1")


def _migration_sql() -> list[str]:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sqlmigrate", "xo_recommender", MIGRATION_0007, stdout=out)
    return [line for line in out.getvalue().splitlines() if line.strip()
            and not line.startswith("--")]


@pytest.mark.django_db(transaction=True)  # the other sessions see the rows made here
@pytest.mark.skipif(connection.vendor != "postgresql", reason="NOT VALID is PostgreSQL's")
def test_the_checks_are_added_without_holding_writes_back_for_the_scan():
    """Migration 0007 adds each check ``NOT VALID`` (no scan) and validates it in a
    statement of its own, and the checks end validated. Then its own ``VALIDATE``
    statements are run in a session held open: another session still writes meanwhile
    (PostgreSQL's lock for them; a plain ``ADD CONSTRAINT … CHECK`` holds every write
    back until its scan ends)."""
    sql = _migration_sql()
    adds = [line for line in sql if "ADD CONSTRAINT" in line]
    validates = [line for line in sql if "VALIDATE CONSTRAINT" in line]
    assert len(adds) == 2 and all(line.rstrip("; ").endswith("NOT VALID") for line in adds)
    assert sorted(name for name in CHECKS for line in validates if name in line) == sorted(
        CHECKS)
    assert not any(line.upper().startswith(("BEGIN", "COMMIT")) for line in sql)

    with connection.cursor() as cursor:
        cursor.execute("SELECT conname, convalidated FROM pg_constraint WHERE conname "
                       "= ANY(%s)", [list(CHECKS)])
        assert dict(cursor.fetchall()) == dict.fromkeys(CHECKS, True)

    import psycopg

    params = {k: v for k, v in connection.get_connection_params().items()
              if k != "cursor_factory"}
    user, business = UserFactory(), BusinessFactory()
    now = timezone.now()
    with psycopg.connect(**params, autocommit=False) as validating, \
            psycopg.connect(**params, autocommit=True) as writer:
        for line in validates:
            validating.execute(line.rstrip(";"))  # its lock is held until rollback
        writer.execute("SET lock_timeout = '2s'")
        writer.execute(
            f"INSERT INTO {Interaction._meta.db_table} (user_id, business_id, "
            "interaction_type, weight, count, first_seen, last_seen) "
            "VALUES (%s, %s, 'view', 1.0, 1, %s, %s)", [user.pk, business.pk, now, now])
        validating.rollback()
    assert Interaction.objects.filter(user=user, business=business).exists()
