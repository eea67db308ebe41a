"""What a job costs: billed seconds rounded up to the provider's unit, times
the rate for provider, model and resolution in force now."""

import math
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from .models import Rate


class NoRate(LookupError):
    """No price is set for this provider, model and resolution."""


@dataclass(frozen=True)
class Quote:
    seconds: float  # the measured duration that is billed
    unit_seconds: int
    units: int
    credits_per_unit: int
    usd_per_unit: Decimal
    rate_id: int | None

    @property
    def billed_seconds(self) -> int:
        return self.units * self.unit_seconds

    @property
    def credits(self) -> int:
        return self.units * self.credits_per_unit

    @property
    def usd(self) -> Decimal:
        return (self.usd_per_unit * self.units).quantize(Decimal("0.01"))


def billed_units(seconds: float, unit_seconds: int) -> int:
    """Per started unit; anything under one unit counts as one."""
    # Round to the millisecond first so 10.0000001 s of float noise is not 3 units.
    return max(1, math.ceil(round(seconds, 3) / unit_seconds))


def rate_current(*, provider: str, model: str, resolution: str) -> Rate:
    rate = (
        Rate.objects.filter(
            provider=provider,
            model=model,
            resolution=resolution,
            effective_from__lte=timezone.now(),
        )
        .order_by("-effective_from")
        .first()
    )
    if rate is None:
        raise NoRate(f"No price is set for {provider} {model} at {resolution}.")
    return rate


def quote(*, provider: str, model: str, resolution: str, seconds: float) -> Quote:
    rate = rate_current(provider=provider, model=model, resolution=resolution)
    return Quote(
        seconds=seconds,
        unit_seconds=rate.unit_seconds,
        units=billed_units(seconds, rate.unit_seconds),
        credits_per_unit=rate.credits_per_unit,
        usd_per_unit=rate.usd_per_unit,
        rate_id=rate.pk,
    )


def settle_amount(*, job, output_seconds: float) -> int:
    """The charge for a finished job: its output's measured duration at the
    rate it was quoted, never more than what was held."""
    units = billed_units(output_seconds, job.unit_seconds)
    return min(units * job.credits_per_unit, job.credits_held)
