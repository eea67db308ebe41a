"""Known moments and grants at them, for the staff admin's tests (jobs with
their ledger come from tests/factories.py's make_job)."""

from datetime import datetime, time, timedelta

from django.utils import timezone

from jobs.credits.ledger import credits_grant
from tests.factories import at


def local(days_ago: int, hour: int = 12, minute: int = 0) -> datetime:
    """An aware moment `days_ago` local days before today, at hour:minute."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def grant(user, amount: int, when: datetime, *, pool: str = "studio", key: str | None = None):
    key = key or f"grant:{user.pk}:{pool}:{when.isoformat()}:{amount}"
    return at(credits_grant(user=user, pool=pool, amount=amount, key=key), when)
