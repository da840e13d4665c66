"""The table refuses what ``record_interaction`` refuses: a weight above ``MAX_WEIGHT``
(and with it NaN and infinity, which PostgreSQL compares above every number) and a
count below 1. Rows written past the checks before (through the ORM or raw SQL) are
brought into range, so the constraints can be added on a live table.

On PostgreSQL each constraint is added ``NOT VALID`` first (a brief lock, no scan; new
writes are checked from then on), the old rows are brought into range, and only then
is the constraint validated, in a transaction of its own: ``VALIDATE CONSTRAINT`` scans
the table under a SHARE UPDATE EXCLUSIVE lock, which lets reads and writes go on. The
migration is therefore not atomic; each step runs in a transaction of its own and is
safe to find done (a rerun after a failure skips the checks that exist). Elsewhere the
rows are brought into range first, then each constraint is added as usual (a rebuild of
the table, in one transaction)."""

from django.contrib.postgres.operations import AddConstraintNotValid, ValidateConstraint
from django.db import migrations, models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Greatest

MAX_WEIGHT = 1e6  # xo_recommender.models.MAX_WEIGHT when this was written

WEIGHT_RANGE = models.CheckConstraint(
    condition=models.Q(("weight__gte", 0), ("weight__lte", MAX_WEIGHT)),
    name="xo_rec_interaction_weight_range",
)
COUNT_AT_LEAST_ONE = models.CheckConstraint(
    condition=models.Q(("count__gte", 1)), name="xo_rec_interaction_count_gte_1"
)


def into_range(apps, schema_editor):
    """Rows written past the service brought into the checks' range, each in one update
    (on PostgreSQL the checks already guard updates: fixing a row's weight first would
    leave its count out of range, and be refused)."""
    interaction = apps.get_model("xo_recommender", "Interaction")
    rows = interaction.objects.using(schema_editor.connection.alias)
    out = Q(weight__gt=MAX_WEIGHT) | Q(count__lt=1)  # +inf is above MAX_WEIGHT too
    weight = [When(weight__gt=MAX_WEIGHT, then=Value(MAX_WEIGHT))]
    if schema_editor.connection.vendor == "postgresql":  # NaN = NaN there, and NaN is
        out |= Q(weight=float("nan"))  # above every number: it is told apart first
        weight.insert(0, When(weight=float("nan"), then=Value(1.0)))
    rows.filter(out).update(weight=Case(*weight, default=F("weight")),
                            count=Greatest(F("count"), Value(1)))


def _postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def into_range_first(apps, schema_editor):
    """Elsewhere the rows are brought into range before the checks are added (adding
    one there copies the table through it)."""
    if not _postgresql(schema_editor):
        into_range(apps, schema_editor)


def into_range_then(apps, schema_editor):
    """On PostgreSQL, once the checks guard new writes: no row out of range can come in
    after this, so the validation that follows finds none."""
    if _postgresql(schema_editor):
        into_range(apps, schema_editor)


def _exists(schema_editor, table: str, name: str) -> bool:
    if schema_editor.collect_sql:  # sqlmigrate: show every statement
        return False
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s "
                       "AND conrelid = %s::regclass", [name, schema_editor.quote_name(table)])
        return cursor.fetchone() is not None


class AddCheckNotValid(AddConstraintNotValid):
    """Django's ``ADD CONSTRAINT … NOT VALID`` on PostgreSQL (enforced on new writes at
    once, the rows already there scanned by ``ValidateCheck`` later), skipped where the
    constraint exists; elsewhere the usual ``AddConstraint``."""

    atomic = True  # elsewhere the table is rebuilt: in one transaction

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _postgresql(schema_editor):
            migrations.AddConstraint.database_forwards(self, app_label, schema_editor,
                                                       from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model) and not _exists(
                schema_editor, model._meta.db_table, self.constraint.name):
            super().database_forwards(app_label, schema_editor, from_state, to_state)


class ValidateCheck(ValidateConstraint):
    """Django's ``VALIDATE CONSTRAINT`` on PostgreSQL (reads and writes go on while it
    scans); elsewhere nothing: the constraint was checked when it was added."""

    atomic = True

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _postgresql(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)


class RemoveCheck(migrations.RemoveConstraint):
    atomic = True  # elsewhere the table is rebuilt: in one transaction


class Migration(migrations.Migration):
    # Each step commits on its own, so the table is never held for the whole scan.
    atomic = False

    dependencies = [
        ("xo_recommender", "0006_ingested_batches"),
    ]

    operations = [
        migrations.RunPython(into_range_first, migrations.RunPython.noop, atomic=True,
                             elidable=True),
        AddCheckNotValid(model_name="interaction", constraint=WEIGHT_RANGE),
        AddCheckNotValid(model_name="interaction", constraint=COUNT_AT_LEAST_ONE),
        migrations.RunPython(into_range_then, migrations.RunPython.noop, atomic=True,
                             elidable=True),
        ValidateCheck(model_name="interaction", name=WEIGHT_RANGE.name),
        ValidateCheck(model_name="interaction", name=COUNT_AT_LEAST_ONE.name),
        RemoveCheck(model_name="interaction", name="xo_rec_interaction_weight_gte_0"),
    ]
