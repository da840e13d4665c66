from django.db import migrations

from xo_recommender.sources import CreateSourceViews


class Migration(migrations.Migration):
    """Create the SQL views over the host tables (reversed by dropping them)."""

    dependencies = [("xo_recommender", "0001_initial")]

    operations = [CreateSourceViews()]
