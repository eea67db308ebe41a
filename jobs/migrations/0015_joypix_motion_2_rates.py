from decimal import Decimal

from django.db import migrations

# JoyPix's single-speaker motion-2 (talking photos; ../shared/provider-facts.md)
# has no price on the pages seen. Assumed, until it is known, to cost what
# motion-2-dialog costs (../shared/seeds/joypix-motion-2-dialog-api.txt):
# per started 5 s, 15 credits ($0.15) at 480p and 30 ($0.30) at 720p. Staff
# correct it with a new row in the admin once JoyPix publishes a price.
MODEL = "motion-2"
RATES = [
    ("480p", 15, Decimal("0.15")),
    ("720p", 30, Decimal("0.30")),
]
UNIT_SECONDS = 5
NOTE = (
    "Assumed: JoyPix gives no price for motion-2 on the pages seen, so it is "
    "billed as motion-2-dialog (per started 5 s) until its price is known."
)


def seed(apps, schema_editor):
    Rate = apps.get_model("jobs", "Rate")
    for resolution, credits, usd in RATES:
        Rate.objects.get_or_create(
            provider="joypix", model=MODEL, resolution=resolution,
            defaults={
                "unit_seconds": UNIT_SECONDS, "credits_per_unit": credits,
                "usd_per_unit": usd, "note": NOTE,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("jobs", "Rate").objects.filter(
        provider="joypix", model=MODEL, note=NOTE
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0014_api")]
    operations = [migrations.RunPython(seed, unseed)]
