"""The dashboard's figures: plain functions over ORM aggregates.

Every figure is one grouped query whatever the number of entries or jobs
(eight in all; see `dashboard`), and the open holds are listed up to a limit
beside their exact count and sum.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum, Window
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from jobs.credits.ledger import open_holds
from jobs.credits.usage import CHARGED, RETURNED
from jobs.models import (
    DeliveryStatus,
    EntryKind,
    Job,
    JobState,
    LedgerEntry,
    Pool,
    WebhookDelivery,
)

from .chart import Chart, spend_chart
from .period import Period

OPEN_HOLDS_SHOWN = 50
TOP_KEYS_SHOWN = 10
FAILED_WEBHOOKS_SHOWN = 20
# A refund is an adjustment under this key (see jobs.staff.actions.job_refund_key).
REFUND_KEY = Q(idempotency_key__startswith="job:", idempotency_key__endswith=":refund")


# --- Credits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditRow:
    """One member's credits in one pool over the period."""

    user_id: int
    username: str
    pool: str
    granted: int
    adjusted: int  # adjustments other than refunds, signed
    refunded: int
    spent: int  # captured by finished jobs

    @property
    def pool_label(self) -> str:
        return Pool(self.pool).label

    @property
    def net_spent(self) -> int:
        return self.spent - self.refunded


@dataclass
class PoolTotal:
    pool: str
    granted: int = 0
    adjusted: int = 0
    refunded: int = 0
    spent: int = 0
    members: int = 0

    @property
    def label(self) -> str:
        return Pool(self.pool).label

    @property
    def net_spent(self) -> int:
        return self.spent - self.refunded


def credits_by_member(period: Period) -> list[CreditRow]:
    """Granted, adjusted, refunded and spent per member and pool (one query)."""

    def total(condition: Q):
        return Coalesce(Sum("amount", filter=condition), 0)

    rows = (
        LedgerEntry.objects.filter(
            period.within(), kind__in=[EntryKind.GRANT, EntryKind.ADJUST, EntryKind.CAPTURE]
        )
        .values("account__user_id", "account__user__username", "account__pool")
        .annotate(
            granted=total(Q(kind=EntryKind.GRANT)),
            adjusted=total(Q(kind=EntryKind.ADJUST) & ~REFUND_KEY),
            refunded=total(Q(kind=EntryKind.ADJUST) & REFUND_KEY),
            spent=total(Q(kind=EntryKind.CAPTURE)),
        )
        .order_by("account__user__username", "account__pool")
    )
    return [
        CreditRow(
            user_id=r["account__user_id"],
            username=r["account__user__username"],
            pool=r["account__pool"],
            granted=r["granted"],
            adjusted=r["adjusted"],
            refunded=r["refunded"],
            spent=r["spent"],
        )
        for r in rows
    ]


def pool_totals(rows: list[CreditRow]) -> list[PoolTotal]:
    """The per-pool sums of `credits_by_member` (no query)."""
    totals = {pool: PoolTotal(pool=pool) for pool in Pool.values}
    for row in rows:
        t = totals[row.pool]
        t.granted += row.granted
        t.adjusted += row.adjusted
        t.refunded += row.refunded
        t.spent += row.spent
        t.members += 1
    return list(totals.values())


# --- Spend per API key ------------------------------------------------------------------


@dataclass(frozen=True)
class KeySpendRow:
    """What one API key's jobs were charged, and given back, in the period."""

    key_id: int
    name: str
    prefix: str
    owner_id: int
    owner: str
    charged: int
    returned: int  # releases of failed jobs' holds and staff refunds

    @property
    def net(self) -> int:
        return self.charged - self.returned


def spend_by_key(period: Period, *, limit: int = TOP_KEYS_SHOWN) -> list[KeySpendRow]:
    """The keys that were charged most in the period, with their owners (one query)."""
    charged = Coalesce(Sum("amount", filter=CHARGED), 0)
    rows = (
        LedgerEntry.objects.filter(period.within(), CHARGED | RETURNED, job__api_key__isnull=False)
        .values(
            "job__api_key",
            "job__api_key__name",
            "job__api_key__prefix",
            "job__api_key__owner_id",
            "job__api_key__owner__username",
        )
        .annotate(charged=charged, returned=Coalesce(Sum("amount", filter=RETURNED), 0))
        .order_by("-charged", "job__api_key")[:limit]
    )
    return [
        KeySpendRow(
            key_id=r["job__api_key"],
            name=r["job__api_key__name"],
            prefix=r["job__api_key__prefix"],
            owner_id=r["job__api_key__owner_id"],
            owner=r["job__api_key__owner__username"],
            charged=r["charged"],
            returned=r["returned"],
        )
        for r in rows
    ]


# --- Spend per day ---------------------------------------------------------------------


@dataclass(frozen=True)
class DaySpend:
    day: date
    by_pool: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_pool.values())

    def of(self, pool: str) -> int:
        return self.by_pool.get(pool, 0)

    @property
    def studio(self) -> int:
        return self.of(Pool.STUDIO)

    @property
    def api(self) -> int:
        return self.of(Pool.API)


def spend_by_day(period: Period) -> list[DaySpend]:
    """Credits captured per local day and pool, every day of the period (one query)."""
    rows = (
        LedgerEntry.objects.filter(period.within(), kind=EntryKind.CAPTURE)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "account__pool")
        .annotate(spent=Sum("amount"))
        .order_by()
    )
    found: dict[date, dict[str, int]] = {}
    for r in rows:
        found.setdefault(r["day"], {})[r["account__pool"]] = r["spent"]
    return [
        DaySpend(day=day, by_pool={pool: found.get(day, {}).get(pool, 0) for pool in Pool.values})
        for day in period.days
    ]


# --- Jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderJobs:
    provider: str
    by_state: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def counts(self) -> list[int]:
        return [self.by_state.get(state, 0) for state in JobState.values]


def jobs_by_provider_and_state(period: Period) -> list[ProviderJobs]:
    """Jobs created in the period, counted by provider and their state now (one query)."""
    rows = Job.objects.filter(period.within()).values("provider", "state").annotate(n=Count("id"))
    table: dict[str, dict[str, int]] = {}
    for r in rows.order_by():
        table.setdefault(r["provider"], {})[r["state"]] = r["n"]
    return [ProviderJobs(provider=p, by_state=table[p]) for p in sorted(table)]


def jobs_total_by_state(rows: list[ProviderJobs]) -> ProviderJobs:
    totals: dict[str, int] = {}
    for row in rows:
        for state, n in row.by_state.items():
            totals[state] = totals.get(state, 0) + n
    return ProviderJobs(provider="All providers", by_state=totals)


@dataclass(frozen=True)
class ProviderStats:
    """How the jobs that ended in the period went, for one provider."""

    provider: str
    completed: int
    failed: int  # failed after the studio tried to send them
    cancelled: int  # failed before they were ever sent (members' cancellations)
    avg_to_complete: timedelta | None  # created -> completed, as the member waits
    avg_at_provider: timedelta | None  # sent -> the provider said done

    @property
    def failure_rate(self) -> float | None:
        tried = self.completed + self.failed
        return self.failed / tried if tried else None

    @property
    def failure_rate_text(self) -> str:
        return percent_text(self.failure_rate)

    @property
    def avg_to_complete_text(self) -> str:
        return duration_text(self.avg_to_complete)

    @property
    def avg_at_provider_text(self) -> str:
        return duration_text(self.avg_at_provider)


def percent_text(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def duration_text(value: timedelta | None) -> str:
    """`42 s`, `3 min 07 s`, `2 h 05 min`: a reader's duration, not a timedelta's."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _avg_between(start: str, end: str, condition: Q) -> Avg:
    return Avg(
        ExpressionWrapper(F(end) - F(start), output_field=DurationField()),
        filter=condition,
        output_field=DurationField(),
    )


def provider_stats(period: Period) -> list[ProviderStats]:
    """Failure rate and average times per provider over jobs that ended in
    the period (one query)."""
    done = Q(state=JobState.COMPLETED)
    failed = Q(state=JobState.FAILED)
    rows = (
        Job.objects.filter(period.within("finished_at"), state__in=JobState.terminal())
        .values("provider")
        .annotate(
            completed=Count("id", filter=done),
            failed=Count("id", filter=failed & Q(submit_attempts__gt=0)),
            cancelled=Count("id", filter=failed & Q(submit_attempts=0)),
            avg_to_complete=_avg_between("created_at", "finished_at", done),
            avg_at_provider=_avg_between("submitted_at", "provider_completed_at", done),
        )
        .order_by("provider")
    )
    return [
        ProviderStats(
            provider=r["provider"],
            completed=r["completed"],
            failed=r["failed"],
            cancelled=r["cancelled"],
            avg_to_complete=_as_duration(r["avg_to_complete"]),
            avg_at_provider=_as_duration(r["avg_at_provider"]),
        )
        for r in rows
    ]


def _as_duration(value) -> timedelta | None:
    # PostgreSQL averages intervals; SQLite averages microseconds.
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(microseconds=float(value))


# --- Open holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class OpenHolds:
    entries: list[LedgerEntry]  # the oldest first, at most OPEN_HOLDS_SHOWN
    count: int
    total: int

    @property
    def more(self) -> int:
        return self.count - len(self.entries)


def open_holds_summary(*, limit: int = OPEN_HOLDS_SHOWN) -> OpenHolds:
    """Credits held now, whatever the period: the count and sum (one query),
    and the oldest holds with their members and jobs (one query)."""
    holds = open_holds()
    figures = holds.aggregate(count=Count("id"), total=Coalesce(Sum("amount"), 0))
    entries = list(
        holds.select_related("account__user", "job").order_by("created_at", "id")[:limit]
    )
    return OpenHolds(entries=entries, count=figures["count"], total=figures["total"])


# --- Webhooks the studio gave up on -------------------------------------------------


@dataclass(frozen=True)
class FailedWebhooks:
    entries: list[WebhookDelivery]  # the newest first, at most FAILED_WEBHOOKS_SHOWN
    count: int


def failed_webhooks_summary(*, limit: int = FAILED_WEBHOOKS_SHOWN) -> FailedWebhooks:
    """Outbound webhooks that failed for good, whatever the period: the newest
    and, on each row, the count of all of them (one query)."""
    entries = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED)
        .select_related("api_key__owner", "job")
        .annotate(total=Window(Count("id")))
        .order_by("-updated_at", "-id")[:limit]
    )
    return FailedWebhooks(entries=entries, count=entries[0].total if entries else 0)


# --- Everything, for the page ------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    period: Period
    credits: list[CreditRow]
    pools: list[PoolTotal]
    days: list[DaySpend]
    chart: Chart
    keys: list[KeySpendRow]
    jobs: list[ProviderJobs]
    jobs_total: ProviderJobs
    providers: list[ProviderStats]
    holds: OpenHolds
    webhooks: FailedWebhooks

    @property
    def granted(self) -> int:
        return sum(p.granted for p in self.pools)

    @property
    def spent(self) -> int:
        return sum(p.spent for p in self.pools)

    @property
    def refunded(self) -> int:
        return sum(p.refunded for p in self.pools)

    @property
    def failure_rate(self) -> float | None:
        completed = sum(p.completed for p in self.providers)
        failed = sum(p.failed for p in self.providers)
        return failed / (completed + failed) if completed + failed else None

    @property
    def failure_rate_text(self) -> str:
        return percent_text(self.failure_rate)

    @property
    def busiest_day(self) -> DaySpend | None:
        best = max(self.days, key=lambda d: d.total, default=None)
        return best if best is not None and best.total else None


def dashboard(period: Period) -> Dashboard:
    """All the figures for one period, in eight queries."""
    credits = credits_by_member(period)
    days = spend_by_day(period)
    jobs = jobs_by_provider_and_state(period)
    return Dashboard(
        period=period,
        credits=credits,
        pools=pool_totals(credits),
        days=days,
        chart=spend_chart(days),
        keys=spend_by_key(period),
        jobs=jobs,
        jobs_total=jobs_total_by_state(jobs),
        providers=provider_stats(period),
        holds=open_holds_summary(),
        webhooks=failed_webhooks_summary(),
    )
