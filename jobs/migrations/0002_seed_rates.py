from decimal import Decimal

from django.db import migrations

# From ../shared/seeds/joypix-motion-2-dialog-api.txt: billed per started 5 s.
JOYPIX = [
    ("480p", 15, Decimal("0.15")),
    ("720p", 30, Decimal("0.30")),
]


def seed(apps, schema_editor):
    Rate = apps.get_model("jobs", "Rate")
    for resolution, credits, usd in JOYPIX:
        Rate.objects.get_or_create(
            provider="joypix", model="motion-2-dialog", resolution=resolution,
            defaults={
                "unit_seconds": 5, "credits_per_unit": credits, "usd_per_unit": usd,
                "note": "From the JoyPix Motion-2-Dialog pricing table.",
            },
        )


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
