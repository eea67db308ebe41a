from decimal import Decimal

from django.db import migrations

# lipsync.studio publishes no price per second (../shared/seeds/lipsync-studio-api.txt
# speaks of plans only), so its rows use JoyPix's per-5 s units until staff
# enter a real price. The note says so on each row in the admin.
MODELS = ["lipsync-video", "lipsync-image", "lipsync-image-multi"]
RATES = [
    ("480p", 15, Decimal("0.15")),
    ("720p", 30, Decimal("0.30")),
]
NOTE = (
    "Placeholder: lipsync.studio publishes no per-second price; these are "
    "JoyPix's per-5 s units until a real price is known."
)


def seed(apps, schema_editor):
    Rate = apps.get_model("jobs", "Rate")
    for model in MODELS:
        for resolution, credits, usd in RATES:
            Rate.objects.get_or_create(
                provider="lipsync_studio", model=model, resolution=resolution,
                defaults={
                    "unit_seconds": 5, "credits_per_unit": credits, "usd_per_unit": usd,
                    "note": NOTE,
                },
            )


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_upload")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
