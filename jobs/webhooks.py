"""Provider webhooks. Each submission that supports them carries a URL with a
per-job signed token. A webhook is only a hint: it makes the job due for an
immediate status request, and the status request decides. Nothing in the body
is trusted, so a forged, replayed or early webhook can at most cost one GET."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from .models import Job, JobState

log = logging.getLogger("jobs.webhooks")

_SALT = "jobs.webhook"


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


def webhook_receive(*, provider: str, token: str) -> WebhookOutcome:
    """Make the named job due for a status request now, unless it has ended
    or already is due (a replay or a second webhook changes nothing)."""
    try:
        pk = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return WebhookOutcome(accepted=False, poll=False)
    now = timezone.now()
    made_due = (
        Job.objects.filter(pk=pk, provider=provider, state=JobState.PROCESSING)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__gt=now))
        .update(next_poll_at=now)
    )
    if made_due:
        log.info("job %s: webhook from %s; polling now", pk, provider)
        return WebhookOutcome(accepted=True, poll=True, job_id=pk)
    exists = Job.objects.filter(pk=pk, provider=provider).exists()
    return WebhookOutcome(accepted=exists, poll=False, job_id=pk if exists else None)
