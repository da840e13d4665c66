import django.db.models.deletion
from django.db import migrations, models

from xo_recommender.conf import settings as rec_settings

# The host models are settings, like AUTH_USER_MODEL: the foreign keys and the
# dependencies follow XO_RECOMMENDER_USER_MODEL / XO_RECOMMENDER_BUSINESS_MODEL.


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(rec_settings.user_model),
        migrations.swappable_dependency(rec_settings.business_model),
    ]

    operations = [
        migrations.CreateModel(
            name='RecBusiness',
            fields=[
                ('id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('name', models.TextField()),
                ('categories', models.JSONField(default=list)),
                ('tags', models.JSONField(default=list)),
                ('latitude', models.FloatField(null=True)),
                ('longitude', models.FloatField(null=True)),
                ('popularity', models.FloatField(default=0.0)),
                ('rating', models.FloatField(null=True)),
                ('is_active', models.BooleanField(default=True)),
            ],
            options={
                'verbose_name': 'recommender business',
                'verbose_name_plural': 'recommender businesses',
                'db_table': 'xo_recommender_business_source',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='RecUser',
            fields=[
                ('id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('interests', models.JSONField(default=list)),
                ('latitude', models.FloatField(null=True)),
                ('longitude', models.FloatField(null=True)),
                ('is_active', models.BooleanField(default=True)),
            ],
            options={
                'verbose_name': 'recommender user',
                'db_table': 'xo_recommender_user_source',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='SourceView',
            fields=[
                ('name', models.CharField(max_length=63, primary_key=True, serialize=False)),
                ('signature', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'source view',
            },
        ),
        migrations.CreateModel(
            name='Interaction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('interaction_type', models.CharField(max_length=32, verbose_name='type')),
                ('weight', models.FloatField(default=1.0)),
                ('count', models.PositiveIntegerField(default=1)),
                ('first_seen', models.DateTimeField()),
                ('last_seen', models.DateTimeField()),
                ('business', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=rec_settings.business_model)),
                ('user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=rec_settings.user_model)),
            ],
            options={
                'verbose_name': 'interaction',
                'indexes': [models.Index(fields=['user', '-last_seen'], name='xo_rec_inter_user_recent'), models.Index(fields=['last_seen'], name='xo_rec_inter_last_seen')],
                'constraints': [models.UniqueConstraint(fields=('user', 'business', 'interaction_type'), name='xo_rec_interaction_unique_key'), models.CheckConstraint(condition=models.Q(('weight__gte', 0)), name='xo_rec_interaction_weight_gte_0')],
            },
        ),
    ]
