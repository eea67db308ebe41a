"""The ledger of a period (or of one member) as CSV, streamed: memory does
not grow with it. The Credits page streams a member's own with `user`."""

import csv
from collections.abc import Iterator

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from jobs.models import LedgerEntry

from .period import Period

CSV_HEADER = [
    "entry_id",
    "created_at",
    "member",
    "pool",
    "kind",
    "amount",
    "balance_change",
    "balance_after",
    "held_after",
    "hold_id",
    "job_id",
    "idempotency_key",
    "reason",
    "created_by",
]


class _Echo:
    """A file-like object whose write() hands the line back to the caller."""

    def write(self, value: str) -> str:
        return value


def _text(value: str) -> str:
    # A cell a spreadsheet would run as a formula is written as text.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def ledger_csv_lines(
    period: Period | None,
    *,
    user: AbstractBaseUser | None = None,
    staff_names: bool = True,
    chunk_size: int = 2000,
) -> Iterator[str]:
    """The period's ledger entries (None: all of them; `user`: only that
    member's), oldest first, as CSV lines with a header. Without
    `staff_names` a staff member's entry says `staff`, not who (the member's
    own CSV). Streams with a server-side cursor: memory does not grow."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    entries = LedgerEntry.objects.select_related("account__user", "created_by")
    if period is not None:
        entries = entries.filter(period.within())
    if user is not None:
        entries = entries.filter(account__user=user)
    entries = entries.order_by("created_at", "id")
    for e in entries.iterator(chunk_size=chunk_size):
        yield writer.writerow(
            [
                e.pk,
                timezone.localtime(e.created_at).isoformat(),
                _text(e.account.user.get_username()),
                e.account.pool,
                e.kind,
                e.amount,
                e.balance_change,
                e.balance_after,
                e.held_after,
                e.hold_id or "",
                e.job_id or "",
                _text(e.idempotency_key),
                _text(e.reason),
                _created_by(e, staff_names=staff_names),
            ]
        )


def _created_by(entry: LedgerEntry, *, staff_names: bool) -> str:
    if entry.created_by is None:
        return ""
    return _text(entry.created_by.get_username()) if staff_names else "staff"
