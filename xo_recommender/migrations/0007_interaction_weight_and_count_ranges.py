"""The table refuses what ``record_interaction`` refuses: a weight above ``MAX_WEIGHT``
(and with it NaN and infinity, which PostgreSQL compares above every number) and a
count below 1. Rows written past the checks before (through the ORM or raw SQL) are
brought into range first, so the constraints can be added on a live table."""

from django.db import migrations, models

MAX_WEIGHT = 1e6  # xo_recommender.models.MAX_WEIGHT when this was written


def into_range(apps, schema_editor):
    interaction = apps.get_model("xo_recommender", "Interaction")
    rows = interaction.objects.using(schema_editor.connection.alias)
    if schema_editor.connection.vendor == "postgresql":
        rows.filter(weight=float("nan")).update(weight=1.0)  # NaN = NaN there: unknown
    rows.filter(weight__gt=MAX_WEIGHT).update(weight=MAX_WEIGHT)  # +inf too
    rows.filter(count__lt=1).update(count=1)


class Migration(migrations.Migration):

    dependencies = [
        ("xo_recommender", "0006_ingested_batches"),
    ]

    operations = [
        migrations.RunPython(into_range, migrations.RunPython.noop, elidable=True),
        migrations.RemoveConstraint(
            model_name="interaction",
            name="xo_rec_interaction_weight_gte_0",
        ),
        migrations.AddConstraint(
            model_name="interaction",
            constraint=models.CheckConstraint(
                condition=models.Q(("weight__gte", 0), ("weight__lte", MAX_WEIGHT)),
                name="xo_rec_interaction_weight_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="interaction",
            constraint=models.CheckConstraint(
                condition=models.Q(("count__gte", 1)), name="xo_rec_interaction_count_gte_1"
            ),
        ),
    ]
