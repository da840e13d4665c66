"""Model artifacts move from one bytea value per version into ordered chunks.

Existing versions' artifacts are copied into chunks here, so every reader has one
format to read; the old column goes once they are.
"""

import hashlib

import django.db.models.deletion
from django.db import migrations, models

from xo_recommender.conf import settings as rec_settings


def artifacts_into_chunks(apps, schema_editor):
    version_model = apps.get_model("xo_recommender", "ModelVersion")
    chunk_model = apps.get_model("xo_recommender", "ModelArtifactChunk")
    db = schema_editor.connection.alias
    size = int(rec_settings.ARTIFACT_CHUNK_BYTES)
    for pk in version_model.objects.using(db).values_list("pk", flat=True):
        payload = bytes(version_model.objects.using(db).filter(pk=pk)
                        .values_list("artifact", flat=True).first() or b"")
        count = 0
        for count, start in enumerate(range(0, len(payload), size), start=1):
            chunk_model.objects.using(db).create(version_id=pk, index=count - 1,
                                                 data=payload[start:start + size])
        version_model.objects.using(db).filter(pk=pk).update(
            artifact_bytes=len(payload), artifact_chunks=count,
            artifact_sha256=hashlib.sha256(payload).hexdigest() if payload else "")


def chunks_into_artifacts(apps, schema_editor):
    version_model = apps.get_model("xo_recommender", "ModelVersion")
    chunk_model = apps.get_model("xo_recommender", "ModelArtifactChunk")
    db = schema_editor.connection.alias
    for pk in version_model.objects.using(db).values_list("pk", flat=True):
        parts = (chunk_model.objects.using(db).filter(version_id=pk).order_by("index")
                 .values_list("data", flat=True))
        version_model.objects.using(db).filter(pk=pk).update(
            artifact=b"".join(bytes(p) for p in parts))


class Migration(migrations.Migration):

    dependencies = [
        ("xo_recommender", "0004_sync_permission"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="artifact_bytes",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="artifact_chunks",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="artifact_sha256",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.CreateModel(
            name="ModelArtifactChunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("index", models.PositiveIntegerField()),
                ("data", models.BinaryField()),
                ("version", models.ForeignKey(
                    db_index=False, on_delete=django.db.models.deletion.CASCADE,
                    related_name="chunks", to="xo_recommender.modelversion")),
            ],
            options={
                "verbose_name": "model artifact chunk",
                "constraints": [models.UniqueConstraint(fields=("version", "index"),
                                                        name="xo_rec_artifact_chunk_order")],
            },
        ),
        migrations.RunPython(artifacts_into_chunks, chunks_into_artifacts, elidable=True),
        migrations.RemoveField(
            model_name="modelversion",
            name="artifact",
        ),
    ]
