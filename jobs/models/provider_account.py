from django.conf import settings
from django.db import models
from django.db.models import Q

from jobs.providers.catalogue import provider_choices


class ProviderAccount(models.Model):
    """Where a provider's jobs go, and the key they go with.

    The key is written once through jobs.providers.accounts: only its Fernet
    token (encrypted with PROVIDER_KEYS_SECRET) and its last four characters
    are stored, and nothing shows it back. The studio uses a provider's
    enabled account; at most one per provider is enabled, which the database
    enforces.
    """

    # A callable, so a new provider in the catalogue needs no migration.
    provider = models.CharField(max_length=40, choices=provider_choices)
    name = models.CharField(max_length=100, help_text="Yours to choose, e.g. “Team account”.")
    base_url = models.URLField(
        "base URL",
        max_length=300,
        help_text="The provider's API address, e.g. https://openapi.joypix.ai",
    )
    api_key_encrypted = models.TextField(editable=False)
    key_last4 = models.CharField("key ends with", max_length=4, editable=False)
    enabled = models.BooleanField(
        default=True,
        help_text="The studio sends this provider's jobs to its enabled account. "
        "Only one account per provider can be enabled.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = "provider account"
        ordering = ["provider", "-enabled", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider"],
                condition=Q(enabled=True),
                name="one_enabled_account_per_provider",
                violation_error_message="Another account of this provider is enabled. "
                "Disable it first, or leave this one disabled.",
            ),
        ]

    def __str__(self) -> str:
        # Shown in the admin's history and messages: never the key.
        return f"{self.get_provider_display()}: {self.name}"

    @property
    def key_shown(self) -> str:
        return f"••••{self.key_last4}" if self.key_last4 else "—"
