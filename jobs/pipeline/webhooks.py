"""Provider webhooks. Each submission that supports them carries a URL with a
per-job signed token. A webhook is only a hint: it makes the job due for an
immediate status request, and the status request decides. Nothing in the body
is trusted, so a forged, replayed or early webhook can at most cost one GET."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobState

log = logging.getLogger("jobs.pipeline.webhooks")

_SALT = "jobs.webhook"
# A poll's answer is fresh for QUIET_AFTER_POLL: a webhook within it makes the
# job due when it ends, not at once; one due within POLL_SOON changes nothing.
QUIET_AFTER_POLL = timedelta(seconds=5)
POLL_SOON = timedelta(seconds=1)


def webhooks_enabled() -> bool:
    """Providers only reach a public HTTPS address (http for local use, if allowed)."""
    return settings.PUBLIC_BASE_URL.startswith("https://") or settings.WEBHOOKS_ALLOW_HTTP


def webhook_url(job: Job) -> str:
    token = signing.dumps(job.pk, salt=_SALT)
    return settings.PUBLIC_BASE_URL + reverse("provider_webhook", args=[job.provider, token])


@dataclass(frozen=True)
class WebhookOutcome:
    accepted: bool  # the token names a job of this provider
    poll: bool  # the job was made due for an immediate status request
    job_id: int | None = None
    deferred: bool = False  # made due when the quiet period after a poll ends


def webhook_receive(*, provider: str, token: str) -> WebhookOutcome:
    """Make the named job due for a status request, at most once per quiet
    period: now, unless a request went out in the last QUIET_AFTER_POLL
    seconds (then when that period ends) or one is due within a second
    anyway. A finished job, a replay or a second webhook changes nothing
    more, so fifty replays cost what one webhook costs."""
    try:
        pk = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return WebhookOutcome(accepted=False, poll=False)
    now = timezone.now()
    processing = Job.objects.filter(pk=pk, provider=provider, state=JobState.PROCESSING)
    made_due = (
        processing.filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__gt=now + POLL_SOON))
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=now - QUIET_AFTER_POLL))
        .update(next_poll_at=now)
    )
    if made_due:
        log.info("job %s: webhook from %s; polling now", pk, provider)
        return WebhookOutcome(accepted=True, poll=True, job_id=pk)
    # Asked a moment ago (maybe just before the provider finished): ask again
    # when the quiet period ends, unless a request is due sooner already.
    quiet_end = F("last_polled_at") + QUIET_AFTER_POLL
    deferred = (
        processing.filter(last_polled_at__gt=now - QUIET_AFTER_POLL)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__gt=quiet_end))
        .update(next_poll_at=quiet_end)
    )
    if deferred:
        log.info("job %s: webhook from %s; polling when the quiet period ends", pk, provider)
        return WebhookOutcome(accepted=True, poll=False, job_id=pk, deferred=True)
    exists = Job.objects.filter(pk=pk, provider=provider).exists()
    if exists:
        log.debug("job %s: webhook from %s; nothing more to ask", pk, provider)
    return WebhookOutcome(accepted=exists, poll=False, job_id=pk if exists else None)
