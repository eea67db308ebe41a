"""The poll loop: one at a time (a lease), it submits queued jobs that are due,
polls processing jobs that are due (several at once over one HTTP session per
provider) and archives finished ones, sleeping until the next job is due."""

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job, JobState
from jobs.providers.accounts import ProviderKeyUnreadable
from jobs.providers.base import ProviderAdapter, TaskStatus
from jobs.providers.http import ProviderError
from jobs.providers.routing import adapter_for, endpoint_for

from . import lifecycle
from .leases import lease_acquire, lease_release

log = logging.getLogger("jobs.pipeline.poller")

LEASE = "poller"
BATCH = 64  # jobs claimed per round (one UPDATE)
CONCURRENCY = 8  # status requests in flight at once (the session's pool keeps 10)
MAX_SLEEP = 1.0  # so a webhook's "poll now" is seen within a second
ARCHIVE_HANDOFF = timedelta(seconds=30)  # the archive_job task's head start
KEY_UNREADABLE_WAIT = timedelta(minutes=5)
LIVE_STATES = (JobState.QUEUED, JobState.PROCESSING, JobState.ARCHIVING, JobState.SUBMITTING)


def poll_due(*, max_seconds: float) -> int:
    """Run rounds until `max_seconds` pass or no job is live. Returns rounds run."""
    holder = uuid.uuid4().hex
    if not lease_acquire(LEASE, holder=holder, seconds=max_seconds + 30):
        return 0  # another loop is running
    adapters: dict[str, ProviderAdapter] = {}
    rounds = 0
    deadline = time.monotonic() + max_seconds
    still_live = False
    try:
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            while True:
                polled = run_round(adapters, pool=pool)
                rounds += 1
                remaining = deadline - time.monotonic()
                wait = seconds_until_due()
                if remaining <= 0 or wait is None:
                    still_live = wait is not None
                    break
                if polled < BATCH:  # after a full batch more are likely due: at once
                    time.sleep(min(max(wait, 0.05), MAX_SLEEP, remaining))
    finally:
        for adapter in adapters.values():
            adapter.close()
        lease_release(LEASE, holder=holder)
    if still_live:
        # Out of time with jobs still live: hand over to a fresh loop now
        # rather than leave them until the schedule's next minute.
        lifecycle.kick_poller()
    return rounds


def run_round(adapters: dict[str, ProviderAdapter], *, pool: ThreadPoolExecutor) -> int:
    """One round: submit, poll and take over archives that are due. Returns
    the number of jobs it claimed to poll."""
    now = timezone.now()
    # Oldest first (the model's ordering is newest first): the cards' "3rd in
    # line" counts the queued jobs made before each one.
    for pk in (
        Job.objects.filter(state=JobState.QUEUED, next_poll_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH]
    ):
        lifecycle.job_submit(pk)
    jobs = lifecycle.polls_claim_due(limit=BATCH)
    claimed = len(jobs)
    if jobs:
        # Adapters are made here, not in the threads, so each provider gets one.
        clients = {job.pk: _adapter(adapters, slug=job.provider) for job in jobs}
        unusable = [job for job in jobs if clients[job.pk] is None]
        if unusable:
            # Its stored key cannot be read: ask again later; the reconciler
            # ends these jobs if staff never fix the account.
            Job.objects.filter(pk__in=[job.pk for job in unusable]).update(
                next_poll_at=now + KEY_UNREADABLE_WAIT
            )
            jobs = [job for job in jobs if clients[job.pk] is not None]

        def fetch(job: Job) -> TaskStatus | ProviderError:
            return lifecycle.job_status_fetch(job, adapter=clients[job.pk])

        lifecycle.polls_apply(list(zip(jobs, pool.map(fetch, jobs), strict=True)))
    # Archiving is the archive_job task's work (a download can take minutes and
    # must not hold up polling); the loop only takes over jobs whose task was
    # lost or whose retry is due.
    for pk in (
        Job.objects.filter(state=JobState.ARCHIVING, state_changed_at__lte=now - ARCHIVE_HANDOFF)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .values_list("pk", flat=True)[:BATCH]
    ):
        lifecycle.job_archive(pk)
    close_old_connections()
    return claimed


def seconds_until_due() -> float | None:
    """Seconds until the next live job is due; None when no job is live.

    One indexed look-up per live state (job_state_due: state, next_poll_at),
    never a scan of the jobs in flight: with 10,000 of them a round between
    due times costs what it costs with one."""
    now = timezone.now()
    next_due = None
    for state in LIVE_STATES:
        due = (
            Job.objects.filter(state=state, next_poll_at__isnull=False)
            .order_by("next_poll_at")
            .values_list("next_poll_at", flat=True)
            .first()
        )
        if due is not None and (next_due is None or due < next_due):
            next_due = due
    if next_due is None:
        # A live job with no time set (one mid-submit) is looked at again soon.
        live = Job.objects.filter(state__in=LIVE_STATES).exists()
        return MAX_SLEEP if live else None
    return (next_due - now).total_seconds()


def _adapter(adapters: dict[str, ProviderAdapter], *, slug: str) -> ProviderAdapter | None:
    """One adapter (and so one HTTP session) per provider for the whole loop."""
    if slug not in adapters:
        try:
            adapters[slug] = adapter_for(endpoint_for(slug))
        except ProviderKeyUnreadable as exc:
            log.error("not polling %s jobs: %s", slug, exc)
            return None
    return adapters[slug]
