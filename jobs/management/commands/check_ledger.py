"""Recompute every credit account from its entries and report what disagrees.

Each check is one SQL statement, so each sees one consistent snapshot even
while the studio keeps writing.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import (
    Case,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from jobs.models import CreditAccount, EntryKind, JobState, LedgerEntry

RESOLUTIONS = [EntryKind.CAPTURE, EntryKind.RELEASE]

# Effect of one entry on the posted balance; holds and releases leave it alone.
POSTED_CHANGE = Case(
    When(kind__in=[EntryKind.GRANT, EntryKind.ADJUST], then=F("amount")),
    When(kind=EntryKind.CAPTURE, then=-F("amount")),
    default=Value(0),
    output_field=IntegerField(),
)


def _per_account(entries, total) -> Coalesce:
    """A correlated subquery: `total` summed over the account's `entries`."""
    summed = (
        entries.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(total=total)
        .values("total")
    )
    return Coalesce(Subquery(summed, output_field=IntegerField()), Value(0))


def accounts_recomputed():
    """Every account with its stored totals and the totals its entries give."""
    open_holds = LedgerEntry.objects.filter(kind=EntryKind.HOLD, resolutions__isnull=True)
    return (
        CreditAccount.objects.select_related("user")
        .annotate(
            posted=_per_account(LedgerEntry.objects.all(), Sum(POSTED_CHANGE)),
            open_held=_per_account(open_holds, Sum("amount")),
        )
        .order_by("pk")
    )


def account_problems() -> list[str]:
    problems = []
    for account in accounts_recomputed():
        if (account.balance, account.held) != (account.posted, account.open_held):
            problems.append(
                f"Account #{account.pk} ({account}): stored balance {account.balance:,} "
                f"held {account.held:,}, but its entries give balance {account.posted:,} "
                f"held {account.open_held:,}."
            )
        if account.balance - account.held < 0:
            problems.append(
                f"Account #{account.pk} ({account}): available is "
                f"{account.balance - account.held:,}, below zero."
            )
        elif account.posted - account.open_held < 0:
            problems.append(
                f"Account #{account.pk} ({account}): its entries give available "
                f"{account.posted - account.open_held:,}, below zero."
            )
    return problems


def resolution_problems() -> list[str]:
    """Captures above their hold, and resolutions that point at the wrong entry."""
    problems = []
    oversized = LedgerEntry.objects.filter(
        kind=EntryKind.CAPTURE, amount__gt=F("hold__amount")
    ).values_list("pk", "amount", "hold_id", "hold__amount")
    for pk, amount, hold_id, hold_amount in oversized.order_by("pk"):
        problems.append(
            f"Capture #{pk} charges {amount:,} credits against hold #{hold_id} of {hold_amount:,}."
        )
    misdirected = LedgerEntry.objects.filter(kind__in=RESOLUTIONS).filter(
        ~Q(hold__kind=EntryKind.HOLD) | ~Q(hold__account=F("account"))
    )
    for pk, kind, hold_id in misdirected.order_by("pk").values_list("pk", "kind", "hold_id"):
        problems.append(
            f"{kind.capitalize()} #{pk} resolves entry #{hold_id}, "
            f"which is not a hold of the same account."
        )
    return problems


def orphaned_hold_problems() -> list[str]:
    """Open holds whose job is gone or finished: credits nobody will settle."""
    orphaned = (
        LedgerEntry.objects.filter(kind=EntryKind.HOLD, resolutions__isnull=True)
        .filter(Q(job__isnull=True) | Q(job__state__in=JobState.terminal()))
        .select_related("account__user", "job")
        .order_by("pk")
    )
    problems = []
    for hold in orphaned:
        if hold.job is None:
            why = "has no job"
        else:
            why = f"belongs to job #{hold.job_id}, which is {hold.job.get_state_display().lower()}"
        problems.append(
            f"Hold #{hold.pk} of {hold.amount:,} credits on {hold.account} is open but {why}."
        )
    return problems


class Command(BaseCommand):
    help = (
        "Recompute every credit account's balance and open holds from its ledger "
        "entries and report any difference. Exits non-zero if anything is wrong."
    )

    def handle(self, *args, **options):
        problems = account_problems() + resolution_problems() + orphaned_hold_problems()
        for line in problems:
            self.stdout.write(self.style.ERROR(line))
        if problems:
            raise CommandError(f"Ledger check failed: {len(problems)} problem(s) found.")
        accounts = CreditAccount.objects.count()
        entries = LedgerEntry.objects.count()
        self.stdout.write(
            self.style.SUCCESS(f"Ledger OK: {accounts} accounts, {entries} entries checked.")
        )
