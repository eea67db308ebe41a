from django.conf import settings
from django.db import models
from django.db.models import Q


class Pool(models.TextChoices):
    """Credit pools. Never interchangeable: studio jobs spend studio credits,
    API jobs spend API credits."""

    STUDIO = "studio", "Studio"
    API = "api", "API"


class EntryKind(models.TextChoices):
    GRANT = "grant", "Grant"
    ADJUST = "adjust", "Adjustment"
    HOLD = "hold", "Hold"
    CAPTURE = "capture", "Capture"
    RELEASE = "release", "Release"


class CreditAccount(models.Model):
    """One member's credits in one pool.

    `balance` (posted) and `held` (open holds) are running totals kept under a
    row lock by jobs.ledger; `check_ledger` recomputes them from the entries.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_accounts"
    )
    pool = models.CharField(max_length=10, choices=Pool.choices)
    balance = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "pool"], name="one_account_per_user_pool"),
            models.CheckConstraint(condition=Q(held__gte=0), name="held_not_negative"),
            # Available = balance - held never goes below zero.
            models.CheckConstraint(
                condition=Q(balance__gte=models.F("held")), name="available_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_pool_display()}"

    @property
    def available(self) -> int:
        return self.balance - self.held


class LedgerEntry(models.Model):
    """An append-only line in an account's history.

    Amounts are whole credits. A grant is positive; an adjustment is signed;
    a hold, capture or release is a positive amount whose effect depends on
    its kind. A capture closes its hold: it charges `amount` and releases the
    rest of the hold in the same entry.
    """

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    amount = models.BigIntegerField()
    hold = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resolutions",
        help_text="For a capture or release: the hold it resolves.",
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="ledger_entries"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who made this entry, if a person did.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    balance_after = models.BigIntegerField(help_text="Posted balance after this entry.")
    held_after = models.BigIntegerField(help_text="Open holds after this entry.")

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="entry_account_recent"),
            models.Index(fields=["kind", "created_at"], name="entry_kind_date"),
        ]
        constraints = [
            # At most one capture-or-release per hold: the database refuses a
            # second resolution, whatever the code above it does.
            models.UniqueConstraint(
                fields=["hold"],
                condition=Q(kind__in=["capture", "release"]),
                name="one_resolution_per_hold",
            ),
            models.CheckConstraint(
                condition=(
                    (Q(kind__in=["capture", "release"]) & Q(hold__isnull=False))
                    | (~Q(kind__in=["capture", "release"]) & Q(hold__isnull=True))
                ),
                name="resolution_points_at_hold",
            ),
            models.CheckConstraint(
                condition=(
                    (Q(kind="adjust") & ~Q(amount=0))
                    | (Q(kind__in=["grant", "hold"]) & Q(amount__gt=0))
                    | (Q(kind__in=["capture", "release"]) & Q(amount__gte=0))
                ),
                name="amount_sign_fits_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.account})"

    @property
    def is_resolution(self) -> bool:
        return self.kind in (EntryKind.CAPTURE, EntryKind.RELEASE)

    @property
    def balance_change(self) -> int:
        """Effect on the posted balance."""
        if self.kind in (EntryKind.GRANT, EntryKind.ADJUST):
            return self.amount
        if self.kind == EntryKind.CAPTURE:
            return -self.amount
        return 0

    @property
    def available_after(self) -> int:
        return self.balance_after - self.held_after
