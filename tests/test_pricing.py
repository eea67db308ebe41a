from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import Rate
from jobs.pricing import NoRate, billed_units, quote


@pytest.mark.parametrize(
    ("seconds", "units"),
    [
        (0.4, 1),
        (4.99, 1),
        (5.0, 1),
        (5.001, 2),
        (10.0, 2),
        (10.0000001, 2),
        (599.9, 120),
        (600.0, 120),
    ],
)
def test_it_bills_per_started_five_seconds(seconds, units):
    assert billed_units(seconds, 5) == units


@pytest.mark.django_db
def test_joypix_rates_are_seeded_from_the_provider_page():
    q480 = quote(provider="joypix", model="motion-2-dialog", resolution="480p", seconds=12.3)
    q720 = quote(provider="joypix", model="motion-2-dialog", resolution="720p", seconds=12.3)
    assert (q480.units, q480.credits, q480.usd) == (3, 45, Decimal("0.45"))
    assert (q720.units, q720.credits, q720.usd) == (3, 90, Decimal("0.90"))
    assert q480.billed_seconds == 15


@pytest.mark.django_db
def test_a_new_rate_applies_from_its_start_and_not_before():
    Rate.objects.create(
        provider="joypix",
        model="motion-2-dialog",
        resolution="480p",
        credits_per_unit=20,
        usd_per_unit=Decimal("0.20"),
        effective_from=timezone.now() + timezone.timedelta(days=1),
    )
    assert (
        quote(provider="joypix", model="motion-2-dialog", resolution="480p", seconds=5).credits
        == 15
    )


@pytest.mark.django_db
def test_an_unpriced_combination_is_refused():
    with pytest.raises(NoRate):
        quote(provider="joypix", model="motion-2-dialog", resolution="1080p", seconds=5)
