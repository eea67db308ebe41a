from django.db import models
from django.utils import timezone

from .job import Resolution


class Rate(models.Model):
    """Credits per billing unit for one provider, model and resolution.

    A duration is billed in whole units, rounded up, and never less than
    `min_seconds` (0: at least one unit), e.g. JoyPix per started 5 s, and
    lipsync.studio per second with a 5 s minimum.

    Rows are never edited into the past: a new price is a new row with a
    later `effective_from`, and a job keeps the rate it was quoted.
    """

    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=60)
    resolution = models.CharField(max_length=8, choices=Resolution.choices)
    unit_seconds = models.PositiveIntegerField(default=5)
    min_seconds = models.PositiveIntegerField(
        default=0, help_text="Shortest duration billed; 0: one unit."
    )
    credits_per_unit = models.PositiveIntegerField()
    usd_per_unit = models.DecimalField(max_digits=10, decimal_places=4)
    effective_from = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["provider", "model", "resolution", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "resolution", "effective_from"],
                name="one_rate_per_start",
            ),
            models.CheckConstraint(condition=models.Q(unit_seconds__gt=0), name="unit_positive"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.provider} {self.model} {self.resolution}: "
            f"{self.credits_per_unit} credits / {self.unit_seconds} s"
            + (f", min {self.min_seconds} s" if self.min_seconds else "")
        )
