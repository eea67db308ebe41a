from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0021_render_times_learnt"),
    ]

    operations = [
        migrations.AddField(
            model_name="rendertimes",
            name="learn_from",
            field=models.DateTimeField(
                blank=True,
                help_text="Jobs submitted before this are not learnt from: learning started "
                "again then (staff, or the provider's account changed where its jobs go).",
                null=True,
            ),
        ),
    ]
