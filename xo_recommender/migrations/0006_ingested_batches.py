"""Tokens of the written batches of deferred interactions: a batch is written once."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('xo_recommender', '0005_model_artifact_chunks'),
    ]

    operations = [
        migrations.CreateModel(
            name='IngestedBatch',
            fields=[
                ('token', models.CharField(max_length=32, primary_key=True, serialize=False)),
                ('written_at', models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                'verbose_name': 'ingested batch',
            },
        ),
    ]
