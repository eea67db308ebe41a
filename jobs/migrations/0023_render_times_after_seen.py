from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0022_render_times_learn_from"),
    ]

    operations = [
        migrations.AddField(
            model_name="rendertimes",
            name="after_seen",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Seconds from a poll seeing a job done to its video archived, at "
                "schedule.OVERHEAD_PROBS, over the same latest jobs (empty until enough were "
                "archived): what the poll schedule leaves for them (schedule.lag_to_match).",
            ),
        ),
    ]
