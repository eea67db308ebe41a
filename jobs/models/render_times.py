from django.db import models


class RenderTimes(models.Model):
    """What the studio has learnt of one provider, model and resolution's
    render times: the quantiles of (provider finish - submit) / billed seconds
    over its latest finished jobs, newer ones weighing more
    (jobs/pipeline/schedule.py, PROBS). Rewritten as each job finishes, read
    (through a short per-process memo) by every poll, card and quote."""

    provider = models.CharField(max_length=40)
    provider_model = models.CharField(max_length=60)
    resolution = models.CharField(max_length=8)
    samples = models.PositiveIntegerField(default=0, help_text="Finished jobs learnt from.")
    quantiles = models.JSONField(default=list, help_text="Ratios at schedule.PROBS.")
    after_seen = models.JSONField(
        default=list,
        blank=True,
        help_text="Seconds from a poll seeing a job done to its video archived, at "
        "schedule.OVERHEAD_PROBS, over the same latest jobs (empty until enough were "
        "archived): what the poll schedule leaves for them (schedule.lag_to_match).",
    )
    learn_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Jobs submitted before this are not learnt from: learning started again "
        "then (staff, or the provider's account changed where its jobs go).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "render times"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_model", "resolution"], name="render_times_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_model} {self.resolution} ({self.samples} jobs)"
