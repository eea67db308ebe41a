"""Outbound webhooks: a job made through the API with a `webhook` is POSTed
to that address when it ends, signed the Standard Webhooks way with its
key's `whsec_…` secret, and never lost.

Durable: `webhook_delivery_create` writes the row in the transaction that
ends the job (jobs.pipeline.lifecycle calls it), a task sends it right after
the commit, and a sweep every minute sends whatever is due (a retry, or a
send lost to a crash). An attempt is claimed with a conditional update, so
two workers never send the same attempt at once. 2xx is delivered; any other
answer, a redirect (never followed), a timeout or a connection error is
retried on RETRY_DELAYS, about three days, then the delivery is failed. The
address goes through the SSRF guard (jobs.net.fetch) at submission and at
every attempt; a refused address fails the delivery at once.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from datetime import datetime, timedelta

import requests
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from standardwebhooks.webhooks import Webhook

from jobs.models import ApiKey, DeliveryStatus, Job, WebhookDelivery
from jobs.net.fetch import UnsafeUrl, fetch_session, url_check
from jobs.providers.accounts import _fernet

log = logging.getLogger("jobs.api.webhooks")

# Wait after each failed attempt: 12 attempts over about 2.8 days. The
# sweep runs every minute, so the first retry comes within a minute.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    *[timedelta(hours=10)] * 6,
]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def retry_schedule_text() -> str:
    """'5 s, 5 min, 30 min, 2 h, …' for pages."""

    def short(wait: timedelta) -> str:
        seconds = int(wait.total_seconds())
        if seconds < 60:
            return f"{seconds} s"
        if seconds < 3600:
            return f"{seconds // 60} min"
        return f"{seconds // 3600} h"

    return ", ".join(short(wait) for wait in RETRY_DELAYS)


# How long one attempt may hold its claim before another worker may retry it.
CLAIM = timedelta(seconds=60)
TIMEOUT = (5.0, 15.0)  # connect, read: a receiver should answer fast and work later
SECRET_PREFIX = "whsec_"
ROTATION_GRACE = timedelta(hours=24)
SWEEP_BATCH = 200


# --- Secrets --------------------------------------------------------------------


def _encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def _new_secret() -> str:
    # Standard Webhooks secrets are base64 of 24 to 64 random bytes.
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@sensitive_variables("secret")
def webhook_secret(key: ApiKey) -> str:
    """The key's current signing secret, made on first use."""
    if not key.webhook_secret_encrypted:
        secret = _new_secret()
        ApiKey.objects.filter(pk=key.pk, webhook_secret_encrypted="").update(
            webhook_secret_encrypted=_encrypt(secret)
        )
        key.refresh_from_db(fields=["webhook_secret_encrypted"])
    return _decrypt(key.webhook_secret_encrypted)


@sensitive_variables("secret")
def webhook_secret_rotate(key: ApiKey, *, now: datetime | None = None) -> str:
    """A new secret; the old one keeps signing too for ROTATION_GRACE."""
    now = now or timezone.now()
    old = webhook_secret(key)
    secret = _new_secret()
    key.previous_webhook_secret_encrypted = _encrypt(old)
    key.previous_secret_until = now + ROTATION_GRACE
    key.webhook_secret_encrypted = _encrypt(secret)
    key.save(
        update_fields=[
            "webhook_secret_encrypted",
            "previous_webhook_secret_encrypted",
            "previous_secret_until",
        ]
    )
    return secret


def webhook_secrets_signing(key: ApiKey, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, and the previous during its grace."""
    now = now or timezone.now()
    found = [webhook_secret(key)]
    if (
        key.previous_webhook_secret_encrypted
        and key.previous_secret_until
        and key.previous_secret_until > now
    ):
        found.append(_decrypt(key.previous_webhook_secret_encrypted))
    return found


def webhook_sign(*, secrets_: list[str], event_id: str, when: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,…` per secret, space-separated."""
    return " ".join(Webhook(s).sign(event_id, when, body) for s in secrets_)


# --- Making deliveries ------------------------------------------------------------


def _event_id() -> str:
    return f"msg_{secrets.token_urlsafe(18)}"


def webhook_payload(job: Job) -> dict:
    """The seed page's body, `{id, model, status, output, error, executionTime,
    timings}`: what GET /api/v1/jobs/{id} answers. (Only /api/v1 takes a
    `webhook`; JoyPix's routes have none.)"""
    from .services import job_answer

    return job_answer(job)


def webhook_delivery_create(job: Job) -> WebhookDelivery | None:
    """Owe the job's caller its end. Call inside the transaction that ends
    the job; the send is queued for after the commit."""
    job = Job.objects.exclude(api_webhook="").filter(pk=job.pk).first()
    if job is None:
        return None
    delivery = WebhookDelivery.objects.create(
        job=job,
        api_key=job.api_key,
        url=job.api_webhook,
        event_id=_event_id(),
        payload=webhook_payload(job),
        next_attempt_at=timezone.now(),
    )
    _send_after_commit(delivery)
    return delivery


def webhook_test_create(*, key: ApiKey, url: str) -> WebhookDelivery:
    """A test event to `url`, signed with `key`'s secret(s)."""
    url_check(url)
    event_id = _event_id()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            api_key=key,
            url=url,
            event_id=event_id,
            event_type="test",
            payload={
                "id": event_id,
                "model": None,
                "status": "test",
                "output": None,
                "error": "",
                "executionTime": None,
                "timings": None,
            },
            next_attempt_at=timezone.now(),
        )
        _send_after_commit(delivery)
    return delivery


def webhook_delivery_resend(delivery: WebhookDelivery) -> None:
    """Send it again now, same id and body, with a fresh set of attempts."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claimed_until=None,
            updated_at=timezone.now(),
        )
        _send_after_commit(delivery)


def _send_after_commit(delivery: WebhookDelivery) -> None:
    from jobs.pipeline.lifecycle import enqueue

    pk = delivery.pk
    transaction.on_commit(lambda: enqueue("jobs.tasks.send_webhook", pk))


# --- Sending ----------------------------------------------------------------------


def _claim(pk: int, *, now: datetime) -> WebhookDelivery | None:
    """Take the attempt if it is due and nobody holds it (conditional update)."""
    claimed = WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=pk,
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
    ).update(claimed_until=now + CLAIM, attempts=F("attempts") + 1, updated_at=now)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("api_key").get(pk=pk)


def _post(delivery: WebhookDelivery, *, now: datetime) -> tuple[int | None, str]:
    """(status code or None, error) of one POST; never follows a redirect."""
    body = json.dumps(delivery.payload, separators=(",", ":"))
    signing = webhook_secrets_signing(delivery.api_key, now=now) if delivery.api_key else []
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
    }
    if signing:
        headers["webhook-signature"] = webhook_sign(
            secrets_=signing, event_id=delivery.event_id, when=now, body=body
        )
    url_check(delivery.url)  # UnsafeUrl: a refusal, not a failure to retry
    with fetch_session(timeout=TIMEOUT) as session:
        try:
            response = session.post(
                delivery.url, data=body.encode(), headers=headers, allow_redirects=False
            )
        except requests.Timeout:
            return None, "The receiver did not answer in time."
        except requests.ConnectionError:
            return None, "The receiver could not be reached."
        except requests.RequestException as exc:
            return None, f"The request failed ({type(exc).__name__})."
        with response:
            code = response.status_code
    if 200 <= code < 300:
        return code, ""
    if 300 <= code < 400:
        return code, f"The receiver answered HTTP {code}, a redirect; redirects are not followed."
    return code, f"The receiver answered HTTP {code}."


def webhook_delivery_attempt(pk: int, *, now: datetime | None = None) -> str | None:
    """Send one due attempt of delivery `pk`; its status after, or None if
    it was not due or another worker has it."""
    now = now or timezone.now()
    delivery = _claim(pk, now=now)
    if delivery is None:
        return None
    try:
        code, error = _post(delivery, now=now)
        refused = False
    except UnsafeUrl as exc:
        code, error, refused = None, str(exc), True
    done = timezone.now()
    fields = {
        "last_attempt_at": done,
        "last_status_code": code,
        "last_error": error[:500],
        "claimed_until": None,
        "updated_at": done,
    }
    if code is not None and 200 <= code < 300:
        fields |= {
            "status": DeliveryStatus.DELIVERED,
            "delivered_at": done,
            "next_attempt_at": None,
        }
    elif refused or delivery.attempts >= MAX_ATTEMPTS:
        fields |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        fields["next_attempt_at"] = done + RETRY_DELAYS[delivery.attempts - 1]
    WebhookDelivery.objects.filter(pk=pk, attempts=delivery.attempts).update(**fields)
    log.info("webhook %s attempt %s: %s", delivery.event_id, delivery.attempts, code or error)
    return fields.get("status", DeliveryStatus.PENDING)


def webhook_deliveries_send_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """The sweep: attempt every due delivery (retries, and sends a crash
    lost). Returns how many attempts were made here."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at", "pk")
    sent = 0
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        if webhook_delivery_attempt(pk, now=now) is not None:
            sent += 1
    return sent


def webhook_deliveries_for_key(*, key: ApiKey, limit: int = 50):
    return WebhookDelivery.objects.filter(api_key=key).select_related("job")[:limit]
