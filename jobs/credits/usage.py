"""What API keys have used: jobs made, credits charged and returned, this
period (the key's own budget period) and over the last 12 months.

Two grouped queries whatever the number of keys (`keys_usage`); a member's
spend per month by pool, mode, provider and key in one (`member_spend_by_month`). Charged is
what captures took; returned is what releases gave back (a job that failed
before finishing) plus staff refunds of a finished job's charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, DateField, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from jobs.models import ApiKey, BudgetPeriod, EntryKind, Job, LedgerEntry, Pool

from .key_budget import period_bounds

# A staff refund is an adjustment under this key (jobs.staff.actions.job_refund_key).
REFUND = Q(kind=EntryKind.ADJUST, idempotency_key__startswith="job:") & Q(
    idempotency_key__endswith=":refund"
)
CHARGED = Q(kind=EntryKind.CAPTURE)
RETURNED = Q(kind=EntryKind.RELEASE) | REFUND
MONTHS = 12


@dataclass(frozen=True)
class Usage:
    jobs: int = 0
    charged: int = 0
    returned: int = 0

    @property
    def net(self) -> int:
        return self.charged - self.returned


@dataclass(frozen=True)
class KeyUsage:
    period: str
    this_period: Usage
    last_12_months: Usage
    last_used_at: datetime | None


def months_start(*, months: int = MONTHS, now: datetime | None = None) -> datetime:
    """The first moment of the month `months - 1` months before this one
    (local time): the last 12 months are this one and the 11 before it."""
    start, _ = period_bounds(BudgetPeriod.MONTH, now=now)
    year, month = start.year, start.month - (months - 1)
    while month < 1:
        year, month = year - 1, month + 12
    return timezone.make_aware(datetime(year, month, 1), timezone.get_current_timezone())


def keys_usage(keys: list[ApiKey], *, now: datetime | None = None) -> dict[int, KeyUsage]:
    """Usage of each key by its pk, in two queries for any number of keys."""
    if not keys:
        return {}
    year = months_start(now=now)
    starts = {p: period_bounds(p, now=now)[0] for p in BudgetPeriod.values}
    ids = [k.pk for k in keys]

    job_counts = {
        f"jobs_{p}": Count("id", filter=Q(created_at__gte=start)) for p, start in starts.items()
    }
    jobs = {
        r["api_key"]: r
        for r in Job.objects.filter(api_key__in=ids, created_at__gte=min([year, *starts.values()]))
        .values("api_key")
        .annotate(jobs_year=Count("id", filter=Q(created_at__gte=year)), **job_counts)
        .order_by()
    }

    def total(condition: Q):
        return Coalesce(Sum("amount", filter=condition), 0)

    sums = {"charged_year": total(CHARGED), "returned_year": total(RETURNED)}
    for p, start in starts.items():
        sums[f"charged_{p}"] = total(CHARGED & Q(created_at__gte=start))
        sums[f"returned_{p}"] = total(RETURNED & Q(created_at__gte=start))
    money = {
        r["job__api_key"]: r
        for r in LedgerEntry.objects.filter(
            CHARGED | RETURNED,
            job__api_key__in=ids,
            created_at__gte=min([year, *starts.values()]),
        )
        .values("job__api_key")
        .annotate(**sums)
        .order_by()
    }

    found: dict[int, KeyUsage] = {}
    for key in keys:
        j, m, p = jobs.get(key.pk, {}), money.get(key.pk, {}), key.budget_period
        found[key.pk] = KeyUsage(
            period=p,
            this_period=Usage(
                jobs=j.get(f"jobs_{p}", 0),
                charged=m.get(f"charged_{p}", 0),
                returned=m.get(f"returned_{p}", 0),
            ),
            last_12_months=Usage(
                jobs=j.get("jobs_year", 0),
                charged=m.get("charged_year", 0),
                returned=m.get("returned_year", 0),
            ),
            last_used_at=key.last_used_at,
        )
    return found


# --- A member's spend report ---------------------------------------------------------------


@dataclass(frozen=True)
class SpendLine:
    """Charged and returned in one month for one pool, mode, provider and key."""

    month: date
    pool: str
    mode: str | None  # None: an entry without a job (e.g. its job was deleted)
    provider: str | None
    key_id: int | None  # None: a studio job, or an API job whose key is gone
    key_name: str
    key_prefix: str
    charged: int
    returned: int

    @property
    def net(self) -> int:
        return self.charged - self.returned

    @property
    def pool_label(self) -> str:
        return Pool(self.pool).label


@dataclass(frozen=True)
class MonthSpend:
    """One month's charged and returned credits per pool (the chart's DayValues:
    `day` is the month's first day)."""

    day: date
    charged: dict[str, int]
    returned: dict[str, int]
    lines: list[SpendLine]

    def of(self, pool: str) -> int:
        return self.charged.get(pool, 0)

    @property
    def total(self) -> int:
        return sum(self.charged.values())

    @property
    def total_returned(self) -> int:
        return sum(self.returned.values())

    @property
    def net(self) -> int:
        return self.total - self.total_returned

    @property
    def studio(self) -> int:
        return self.of(Pool.STUDIO)

    @property
    def api(self) -> int:
        return self.of(Pool.API)


def _month_firsts(start: datetime, months: int) -> list[date]:
    firsts, year, month = [], start.year, start.month
    for _ in range(months):
        firsts.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return firsts


def member_spend_by_month(
    user: AbstractBaseUser, *, months: int = MONTHS, now: datetime | None = None
) -> list[MonthSpend]:
    """The member's credits charged and returned per month, oldest first, for
    the last `months` months, each split by pool, mode, provider and key
    (one query). Only the member's own entries."""
    start = months_start(months=months, now=now)
    tz = timezone.get_current_timezone()
    rows = (
        LedgerEntry.objects.filter(CHARGED | RETURNED, account__user=user, created_at__gte=start)
        .annotate(month=TruncMonth("created_at", output_field=DateField(), tzinfo=tz))
        .values(
            "month",
            "account__pool",
            "job__mode",
            "job__provider",
            "job__api_key",
            "job__api_key__name",
            "job__api_key__prefix",
        )
        .annotate(
            charged=Coalesce(Sum("amount", filter=CHARGED), 0),
            returned=Coalesce(Sum("amount", filter=RETURNED), 0),
        )
        .order_by("month", "account__pool", "job__mode", "job__provider", "job__api_key")
    )
    by_month: dict[date, list[SpendLine]] = {}
    for r in rows:
        by_month.setdefault(r["month"], []).append(
            SpendLine(
                month=r["month"],
                pool=r["account__pool"],
                mode=r["job__mode"],
                provider=r["job__provider"],
                key_id=r["job__api_key"],
                key_name=r["job__api_key__name"] or "",
                key_prefix=r["job__api_key__prefix"] or "",
                charged=r["charged"],
                returned=r["returned"],
            )
        )
    report = []
    for first in _month_firsts(timezone.localtime(start), months):
        lines = by_month.get(first, [])
        charged: dict[str, int] = {}
        returned: dict[str, int] = {}
        for line in lines:
            charged[line.pool] = charged.get(line.pool, 0) + line.charged
            returned[line.pool] = returned.get(line.pool, 0) + line.returned
        report.append(MonthSpend(day=first, charged=charged, returned=returned, lines=lines))
    return report
