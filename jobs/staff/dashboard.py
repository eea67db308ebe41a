"""The staff dashboard's figures: plain functions over ORM aggregates.

Every figure is one grouped query whatever the number of entries or jobs
(six in all; see `dashboard`), and the open holds are listed up to a limit
beside their exact count and sum. Periods are whole days in the site's time
zone, the end day included.
"""

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from jobs.credits.ledger import open_holds
from jobs.models import EntryKind, Job, JobState, LedgerEntry, Pool

DEFAULT_DAYS = 30
MAX_DAYS = 366  # one bar per day stays readable up to a year
MAX_EXPORT_DAYS = 3660
OPEN_HOLDS_SHOWN = 50
# A refund is an adjustment under this key (see jobs.staff_actions).
REFUND_KEY = Q(idempotency_key__startswith="job:", idempotency_key__endswith=":refund")


# --- The period -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @classmethod
    def last(cls, days: int = DEFAULT_DAYS, *, today: date | None = None) -> "Period":
        today = today or timezone.localdate()
        return cls(start=today - timedelta(days=days - 1), end=today)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first moment after the period."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def query(self) -> str:
        return f"start={self.start:%Y-%m-%d}&end={self.end:%Y-%m-%d}"

    def created_query(self) -> str:
        """The admin job list's own filter for jobs created in the period."""
        after = self.end + timedelta(days=1)
        return f"created_at__gte={self.start:%Y-%m-%d}&created_at__lt={after:%Y-%m-%d}"

    def __str__(self) -> str:
        return f"{_day(self.start)} {self.start:%Y} – {_day(self.end)} {self.end:%Y}"


def _day(day: date) -> str:
    """`3 Mar`: the day without a leading zero, portably."""
    return f"{day.day} {day:%b}"


class PeriodForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To (included)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, max_days: int = MAX_DAYS, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_days = max_days
        default = Period.last()
        self.fields["start"].widget.attrs["placeholder"] = f"{default.start:%Y-%m-%d}"
        self.fields["end"].widget.attrs["placeholder"] = f"{default.end:%Y-%m-%d}"

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        default = Period.last()
        end = data.get("end") or default.end
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            self.add_error("end", "The end comes before the start.")
        elif (end - start).days + 1 > self.max_days:
            self.add_error("start", f"Choose at most {self.max_days} days.")
        else:
            data["period"] = Period(start=start, end=end)
        return data

    @property
    def period(self) -> Period:
        """The chosen period, or the default one while the form has errors."""
        if self.is_valid():
            return self.cleaned_data["period"]
        return Period.last()


def _in(period: Period, name: str = "created_at") -> Q:
    return Q(**{f"{name}__gte": period.since, f"{name}__lt": period.until})


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
            _in(period), kind__in=[EntryKind.GRANT, EntryKind.ADJUST, EntryKind.CAPTURE]
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
        LedgerEntry.objects.filter(_in(period), kind=EntryKind.CAPTURE)
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


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    pool: str
    value: int
    day: date


@dataclass(frozen=True)
class ChartTick:
    y: float
    value: int


@dataclass(frozen=True)
class ChartLabel:
    x: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    bars: list[ChartBar]
    ticks: list[ChartTick]
    labels: list[ChartLabel]
    columns: list[tuple[float, float, DaySpend]] = field(default_factory=list)

    @property
    def baseline(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def tick_x(self) -> float:
        return self.left - 8

    @property
    def label_y(self) -> float:
        return self.baseline + 18


def nice_ceiling(value: int, steps: int = 4) -> tuple[int, int]:
    """A round axis maximum at or above `value`, and its step."""
    if value <= 0:
        return steps, 1
    raw = value / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step >= raw and step == int(step):
            return int(step) * steps, int(step)
    return int(10 * magnitude) * steps, int(10 * magnitude)  # pragma: no cover


def spend_chart(days: list[DaySpend], *, width: int = 1100, height: int = 280) -> Chart:
    """Geometry of a stacked bar chart (studio below, API above) drawn as SVG
    by the template; the numbers themselves are in a table beside it."""
    left, right, top, bottom = 56, 12, 12, 30
    plot_width, plot_height = width - left - right, height - top - bottom
    top_value, step = nice_ceiling(max((d.total for d in days), default=0))
    slot = plot_width / max(len(days), 1)
    bar_width = max(1.0, slot * 0.72)
    bars, columns, labels = [], [], []
    every = math.ceil(len(days) / 12) or 1
    for n, day in enumerate(days):
        x = left + n * slot + (slot - bar_width) / 2
        base = top + plot_height
        for pool in (Pool.STUDIO, Pool.API):
            value = day.of(pool)
            if value <= 0:
                continue
            h = plot_height * value / top_value
            base -= h
            bars.append(ChartBar(round(x, 2), round(base, 2), round(bar_width, 2), round(h, 2),
                                 pool, value, day.day))  # fmt: skip
        columns.append((round(left + n * slot, 2), round(slot, 2), day))
        if n % every == 0:
            labels.append(ChartLabel(round(x + bar_width / 2, 2), _day(day.day)))
    ticks = [
        ChartTick(round(top + plot_height - plot_height * v / top_value, 2), v)
        for v in range(0, top_value + 1, step)
    ]
    return Chart(width, height, left, top, plot_width, plot_height, bars, ticks, labels, columns)


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
    rows = Job.objects.filter(_in(period)).values("provider", "state").annotate(n=Count("id"))
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
        Job.objects.filter(_in(period, "finished_at"), state__in=JobState.terminal())
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


def open_holds_summary(limit: int = OPEN_HOLDS_SHOWN) -> OpenHolds:
    """Credits held now, whatever the period: the count and sum (one query),
    and the oldest holds with their members and jobs (one query)."""
    holds = open_holds()
    figures = holds.aggregate(count=Count("id"), total=Coalesce(Sum("amount"), 0))
    entries = list(
        holds.select_related("account__user", "job").order_by("created_at", "id")[:limit]
    )
    return OpenHolds(entries=entries, count=figures["count"], total=figures["total"])


# --- Everything, for the page ------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    period: Period
    credits: list[CreditRow]
    pools: list[PoolTotal]
    days: list[DaySpend]
    chart: Chart
    jobs: list[ProviderJobs]
    jobs_total: ProviderJobs
    providers: list[ProviderStats]
    holds: OpenHolds

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
    """All the figures for one period, in six queries."""
    credits = credits_by_member(period)
    days = spend_by_day(period)
    jobs = jobs_by_provider_and_state(period)
    return Dashboard(
        period=period,
        credits=credits,
        pools=pool_totals(credits),
        days=days,
        chart=spend_chart(days),
        jobs=jobs,
        jobs_total=jobs_total_by_state(jobs),
        providers=provider_stats(period),
        holds=open_holds_summary(),
    )


# --- The ledger as CSV -------------------------------------------------------------------

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


def ledger_csv_lines(period: Period, *, chunk_size: int = 2000) -> Iterator[str]:
    """The period's ledger entries, oldest first, as CSV lines with a header.
    Streams with a server-side cursor: memory does not grow with the period."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    entries = (
        LedgerEntry.objects.filter(_in(period))
        .select_related("account__user", "created_by")
        .order_by("created_at", "id")
    )
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
                _text(e.created_by.get_username()) if e.created_by else "",
            ]
        )
