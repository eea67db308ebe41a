"""Jobs with money moved on them, for the usage and spend-report tests."""

from datetime import datetime

from jobs.credits.ledger import (
    credits_adjust,
    credits_capture,
    credits_grant,
    credits_hold,
    credits_release,
)
from jobs.models import Job, LedgerEntry, Pool


def funded(user, *, pool: str = Pool.API, amount: int = 10_000) -> None:
    credits_grant(user=user, pool=pool, amount=amount, key=f"grant:{user.pk}:{pool}", reason="t")


def job_with_money(
    owner,
    *,
    key=None,
    held: int,
    charged: int | None = None,
    refunded: int = 0,
    pool: str = Pool.API,
    mode: str = "talking_photo",
    provider: str = "lipsync_studio",
    at: datetime | None = None,
) -> Job:
    """A job that held `held`, then was charged `charged` (None: released
    whole), then refunded `refunded` by staff; all of it dated `at` if given."""
    job = Job.objects.create(
        owner=owner, pool=pool, source="api" if key else "studio", api_key=key, mode=mode,
        provider=provider, resolution="480p", credits_held=held,
    )  # fmt: skip
    hold = credits_hold(user=owner, pool=pool, amount=held, key=f"job:{job.pk}:hold", job=job)
    if charged is None:
        credits_release(hold=hold, key=f"job:{job.pk}:release")
    else:
        credits_capture(hold=hold, amount=charged, key=f"job:{job.pk}:capture")
    if refunded:
        credits_adjust(
            user=owner, pool=pool, amount=refunded, key=f"job:{job.pk}:refund",
            reason="refund", job=job,
        )  # fmt: skip
    if at is not None:
        Job.objects.filter(pk=job.pk).update(created_at=at)
        LedgerEntry.objects.filter(job=job).update(created_at=at)
    return job
