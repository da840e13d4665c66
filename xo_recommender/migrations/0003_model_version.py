
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('xo_recommender', '0002_source_views'),
    ]

    operations = [
        migrations.CreateModel(
            name='ModelVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('status', models.CharField(choices=[('building', 'building'), ('ready', 'ready'), ('failed', 'failed')], default='building', max_length=16)),
                ('is_active', models.BooleanField(default=False)),
                ('n_users', models.PositiveIntegerField(default=0)),
                ('n_businesses', models.PositiveIntegerField(default=0)),
                ('n_interactions', models.PositiveBigIntegerField(default=0)),
                ('fit_seconds', models.FloatField(blank=True, null=True)),
                ('peak_rss_mb', models.FloatField(blank=True, null=True)),
                ('params', models.JSONField(blank=True, default=dict)),
                ('metrics', models.JSONField(blank=True, default=dict)),
                ('error', models.TextField(blank=True)),
                ('artifact', models.BinaryField(default=b'')),
            ],
            options={
                'verbose_name': 'model version',
                'ordering': ['-created_at', '-pk'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('is_active', True)), fields=('is_active',), name='xo_rec_one_active_version')],
            },
        ),
    ]
