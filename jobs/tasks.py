"""django-q2 task entry points. Each fetches by id and calls a service; each
is safe to run twice (the services claim their job with a conditional update)."""

from django.conf import settings

from jobs.api.idempotency import idempotency_keys_purge
from jobs.api.webhooks import webhook_deliveries_send_due, webhook_delivery_attempt
from jobs.pipeline import lifecycle, poller
from jobs.pipeline.retention import retention_purge
from jobs.studio.uploads import uploads_purge_stale


def submit_job(job_id: int) -> None:
    lifecycle.job_submit(job_id)


def archive_job(job_id: int) -> None:
    lifecycle.job_archive(job_id)


def poll_job(job_id: int) -> None:
    lifecycle.job_poll_now(job_id)


def poll_due() -> int:
    return poller.poll_due(max_seconds=settings.POLL_LOOP_SECONDS)


def reconcile() -> dict[str, int]:
    counts = lifecycle.jobs_reconcile()
    # Files a member uploaded but never turned into a job go after a day.
    counts["staged_uploads_purged"] = uploads_purge_stale()
    return counts


def purge_expired() -> dict[str, int]:
    counts = retention_purge()
    # The API's Idempotency-Keys live 24 h.
    counts["idempotency_keys"] = idempotency_keys_purge()
    return counts


def send_webhook(delivery_id: int) -> str | None:
    return webhook_delivery_attempt(delivery_id)


def send_webhooks_due() -> int:
    # Retries, and any send a crash lost between a job's end and its task.
    return webhook_deliveries_send_due()
