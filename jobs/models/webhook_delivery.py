from django.db import models
from django.db.models import Q


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One POST the studio owes an API caller: a job's end (or a test event).

    Written in the transaction that ends the job, so a crash before the send
    loses nothing; a worker claims it when `next_attempt_at` is due. The
    payload and `event_id` (the `webhook-id` header) never change between
    attempts, so a receiver can drop duplicates.
    """

    job = models.ForeignKey(
        "jobs.Job", on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks"
    )
    # The key whose secret signs it: a job's key, or the key a test was sent for.
    api_key = models.ForeignKey(
        "jobs.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="webhooks"
    )
    url = models.URLField(max_length=2000)
    event_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40, default="job.ended")
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker sends an attempt; another worker may take it over after.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_due",
            ),
            models.Index(fields=["api_key", "-created_at"], name="webhook_by_key"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.status})"
