from django.conf import settings
from django.db import models


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
