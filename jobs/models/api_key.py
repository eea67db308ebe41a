from django.conf import settings
from django.db import models


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"


class ApiKey(models.Model):
    """A member's personal key for the REST API.

    The secret is shown once at creation; only its SHA-256 is stored (the
    secret is 32 random bytes, so a fast hash is enough). `prefix` is the
    public part shown in lists and used to find the row.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Limits (see README, "Key limits"). Staff defaults are copied in at
    # creation; members may only narrow them, staff set anything in the admin.
    expires_at = models.DateTimeField(null=True, blank=True)
    allowed_modes = models.JSONField(
        default=list, blank=True, help_text="Kinds of video this key may make; empty: all."
    )
    allowed_providers = models.JSONField(
        default=list, blank=True, help_text="Providers this key may use; empty: all."
    )
    budget_credits = models.PositiveIntegerField(
        null=True, blank=True, help_text="Credits this key may spend per period; empty: no budget."
    )
    budget_period = models.CharField(
        max_length=5, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests a minute; empty: API_RATE_LIMIT_PER_MINUTE."
    )
    max_in_flight = models.PositiveIntegerField(
        null=True, blank=True, help_text="Jobs running at once; empty: API_KEY_MAX_IN_FLIGHT."
    )
    # The `whsec_…` secret that signs this key's webhooks, Fernet-encrypted
    # (it must be readable to sign). After a rotation the previous one signs
    # too until `previous_secret_until`, so receivers can switch calmly.
    webhook_secret_encrypted = models.TextField(blank=True)
    previous_webhook_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name or 'Unnamed key'} (sk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
