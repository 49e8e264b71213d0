"""UIDs unique per site in the database, step 1: Series and Instance get their study's
site, filled from the study for the rows already there (step 2, in the next migration,
makes it required and unique with the UID: PostgreSQL cannot alter a table with the
updates' deferred foreign-key checks still pending in the same transaction)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def _fill_sites(apps, schema_editor):
    Study = apps.get_model("grading", "Study")
    Series = apps.get_model("grading", "Series")
    Instance = apps.get_model("grading", "Instance")
    Series.objects.update(
        site_id=Subquery(Study.objects.filter(pk=OuterRef("study_id")).values("site_id")[:1])
    )
    Instance.objects.update(
        site_id=Subquery(Series.objects.filter(pk=OuterRef("series_id")).values("site_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [("grading", "0008_merge_trust")]

    operations = [
        migrations.AddField(
            model_name="series",
            name="site",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="grading.site",
            ),
        ),
        migrations.AddField(
            model_name="instance",
            name="site",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="grading.site",
            ),
        ),
        migrations.RunPython(_fill_sites, migrations.RunPython.noop),
    ]
