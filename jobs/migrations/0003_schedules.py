from django.db import migrations

# The poll loop runs for up to POLL_LOOP_SECONDS and is started every minute
# (and kicked after each submission); the reconciler sweeps stuck jobs.
SCHEDULES = [
    ("Poll providers", "jobs.tasks.poll_due"),
    ("Reconcile jobs", "jobs.tasks.reconcile"),
]


def create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": "I", "minutes": 1, "repeats": -1}
        )


def remove(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[name for name, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_seed_rates"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(create, remove)]
