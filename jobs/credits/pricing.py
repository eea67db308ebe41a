"""What a job costs: billed seconds rounded up to the provider's unit (and
never under its minimum), times the rate for provider, model and resolution
in force now."""

import math
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from jobs.models import Job, Rate


class NoRate(LookupError):
    """No price is set for this provider, model and resolution."""


@dataclass(frozen=True)
class Quote:
    seconds: float  # the measured duration that is billed
    unit_seconds: int
    min_seconds: int  # 0: at least one unit
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

    @property
    def minimum_applies(self) -> bool:
        """The minimum, not the duration, set the bill (3 s billed as 5 s)."""
        return self.min_seconds > 0 and _millis(self.seconds) < self.min_seconds

    @property
    def rounded_up(self) -> bool:
        """A part of a unit was billed as a whole one."""
        return not self.minimum_applies and self.billed_seconds > _millis(self.seconds)


def _millis(seconds: float) -> float:
    # Round to the millisecond first so 10.0000001 s of float noise is not 3 units.
    return round(seconds, 3)


def billed_units(seconds: float, *, unit_seconds: int, min_seconds: int = 0) -> int:
    """Per started unit, never under `min_seconds`; anything under one unit
    counts as one. A fraction of a unit is rounded up: for lipsync.studio
    (1 s units) that is our reading, its page showing whole seconds only."""
    return max(1, math.ceil(max(_millis(seconds), min_seconds) / unit_seconds))


def terms_text(*, credits_per_unit: int, unit_seconds: int, min_seconds: int) -> str:
    """A rate in words: "15 credits per 5 s", "4 credits per second, 5 s minimum"."""
    credits = f"{credits_per_unit:,} credit{'' if credits_per_unit == 1 else 's'}"
    per = "second" if unit_seconds == 1 else f"{unit_seconds} s"
    minimum = f", {min_seconds} s minimum" if min_seconds > unit_seconds else ""
    return f"{credits} per {per}{minimum}"


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
        min_seconds=rate.min_seconds,
        units=billed_units(seconds, unit_seconds=rate.unit_seconds, min_seconds=rate.min_seconds),
        credits_per_unit=rate.credits_per_unit,
        usd_per_unit=rate.usd_per_unit,
        rate_id=rate.pk,
    )


def settle_amount(*, job: Job, output_seconds: float) -> int:
    """The charge for a finished job: its output's measured duration on the
    terms it was quoted (unit, minimum, rate), never more than what was held."""
    units = billed_units(output_seconds, unit_seconds=job.unit_seconds, min_seconds=job.min_seconds)
    return min(units * job.credits_per_unit, job.credits_held)
