"""Named, expiring claims in the database, so that one loop runs at a time
across processes and cluster nodes, whatever the broker."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from jobs.models import Lease


def lease_acquire(name: str, *, holder: str, seconds: float) -> bool:
    Lease.objects.get_or_create(name=name)
    now = timezone.now()
    return bool(
        Lease.objects.filter(name=name)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lt=now) | Q(holder=holder))
        .update(holder=holder, expires_at=now + timedelta(seconds=seconds))
    )


def lease_release(name: str, *, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(holder="", expires_at=None)
