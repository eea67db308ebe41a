"""An API key's budget and jobs in flight, counted where the hold is made.

`key_admit` runs inside job_create's transaction, before the hold: it locks
the key's row, then sums this period's spend of the key's jobs (open holds
plus captures) and counts its running jobs. Concurrent requests on one key
queue on that lock, so at the edge of a budget exactly the covered ones are
admitted (PostgreSQL's row lock; SQLite's IMMEDIATE transactions serialise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from jobs.models import ApiKey, BudgetPeriod, EntryKind, JobState, LedgerEntry


class KeyBudgetExceeded(Exception):
    """The job would take the key past its budget this period."""

    def __init__(self, *, budget: int, period: str, spent: int, needed: int, renews_at: datetime):
        self.budget, self.period, self.spent = budget, period, spent
        self.needed, self.renews_at = needed, renews_at
        super().__init__(
            f"This key's budget of {budget:,} credits a {period} is spent: "
            f"{spent:,} used, this job needs {needed:,}. "
            f"It renews at {renews_at.isoformat()}."
        )


class KeyTooManyInFlight(Exception):
    """The key already has as many jobs running as it may."""

    def __init__(self, *, limit: int):
        self.limit = limit
        super().__init__(
            f"This key already has {limit} jobs in flight, its limit; "
            "wait for one to finish and try again."
        )


@dataclass(frozen=True)
class KeySpend:
    spent: int
    budget: int | None
    period: str
    starts_at: datetime
    renews_at: datetime

    @property
    def left(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.spent)


def period_bounds(period: str, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The current period's start and the moment it renews, in the studio's time zone."""
    now = timezone.localtime(now or timezone.now())
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == BudgetPeriod.DAY:
        return day, day + timedelta(days=1)
    if period == BudgetPeriod.WEEK:
        start = day - timedelta(days=day.weekday())  # Monday
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


def key_spent(*, key: ApiKey, since: datetime) -> int:
    """Credits the key's jobs made since `since` hold open or were charged."""
    entries = LedgerEntry.objects.filter(job__api_key=key, job__created_at__gte=since)
    total = entries.filter(
        Q(kind=EntryKind.HOLD, resolutions__isnull=True) | Q(kind=EntryKind.CAPTURE)
    ).aggregate(total=Sum("amount"))["total"]
    return int(total or 0)


def key_spend(*, key: ApiKey, now: datetime | None = None) -> KeySpend:
    """The key's spend this period against its budget (for pages; no lock)."""
    start, renews = period_bounds(key.budget_period, now=now)
    return KeySpend(
        spent=key_spent(key=key, since=start),
        budget=key.budget_credits,
        period=key.budget_period,
        starts_at=start,
        renews_at=renews,
    )


def key_max_in_flight(key: ApiKey) -> int:
    return key.max_in_flight or settings.API_KEY_MAX_IN_FLIGHT


def key_admit(*, key: ApiKey, amount: int, exclude_job_id: int | None = None) -> None:
    """Lock the key and check the job (already created, not yet held) fits its
    limits. Call inside the transaction that holds. Raises KeyBudgetExceeded
    or KeyTooManyInFlight."""
    locked = ApiKey.objects.select_for_update().get(pk=key.pk)
    running = locked.jobs.filter(state__in=JobState.live())
    if exclude_job_id is not None:
        running = running.exclude(pk=exclude_job_id)
    limit = key_max_in_flight(locked)
    if running.count() >= limit:
        raise KeyTooManyInFlight(limit=limit)
    if locked.budget_credits is None:
        return
    start, renews = period_bounds(locked.budget_period)
    spent = key_spent(key=locked, since=start)
    if spent + amount > locked.budget_credits:
        raise KeyBudgetExceeded(
            budget=locked.budget_credits,
            period=locked.budget_period,
            spent=spent,
            needed=amount,
            renews_at=renews,
        )
