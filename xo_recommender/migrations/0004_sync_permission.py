
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('xo_recommender', '0003_model_version'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='interaction',
            options={'permissions': [('sync', 'Can act for any user: sync, clear caches, read and record for others')], 'verbose_name': 'interaction'},
        ),
    ]
