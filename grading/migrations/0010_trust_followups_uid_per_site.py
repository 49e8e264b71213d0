"""UIDs unique per site in the database, step 2: the site is required and unique with
the UID (step 1 filled it)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("grading", "0009_trust_followups_uid_site_fill")]

    operations = [
        migrations.AlterField(
            model_name="series",
            name="site",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="grading.site"
            ),
        ),
        migrations.AlterField(
            model_name="instance",
            name="site",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="grading.site"
            ),
        ),
        migrations.AddConstraint(
            model_name="series",
            constraint=models.UniqueConstraint(
                fields=("site", "series_instance_uid"), name="series_unique_uid_per_site"
            ),
        ),
        migrations.AddConstraint(
            model_name="instance",
            constraint=models.UniqueConstraint(
                fields=("site", "sop_instance_uid"), name="instance_unique_uid_per_site"
            ),
        ),
    ]
