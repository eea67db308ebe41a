"""Retention: how long a job's files are kept after it ends. Inputs go
INPUT_RETENTION_DAYS after the job ends; the output at its archive_expires_at
(OUTPUT_RETENTION_DAYS after it was archived, never when 0). The job row, its
poster and its ledger entries stay; the card says what expired and when."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.files.storage import files_delete_unused
from jobs.models import Job, JobInput

log = logging.getLogger("jobs.pipeline.retention")

BATCH = 200


def inputs_expire_at(job: Job) -> datetime | None:
    """When the job's input files go, or None if they are kept."""
    days = settings.INPUT_RETENTION_DAYS
    if not days or job.finished_at is None or job.inputs_purged_at or job.deleted_at:
        return None
    return job.finished_at + timedelta(days=days)


def retention_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Delete every file whose time has come; nothing else. Safe to run twice."""
    now = now or timezone.now()
    counts = {"inputs": 0, "outputs": 0, "files": 0}
    days = settings.INPUT_RETENTION_DAYS
    if days:
        due = Job.objects.filter(
            finished_at__lt=now - timedelta(days=days),
            inputs_purged_at__isnull=True,
            deleted_at__isnull=True,
        ).values_list("pk", flat=True)[:BATCH]
        for pk in list(due):
            counts["files"] += _purge_inputs(pk, now=now)
            counts["inputs"] += 1
    due = Job.objects.filter(
        archive_expires_at__lt=now, output_purged_at__isnull=True, deleted_at__isnull=True
    ).values_list("pk", flat=True)[:BATCH]
    for pk in list(due):
        counts["files"] += _purge_output(pk, now=now)
        counts["outputs"] += 1
    if counts["inputs"] or counts["outputs"]:
        log.info("retention: %s", counts)
    return counts


def _purge_inputs(pk: int, *, now: datetime) -> int:
    with transaction.atomic():
        # The conditional update claims the job, so two runs never race.
        # updated_at too: an open Studio page then gets the "removed" mark.
        if not Job.objects.filter(pk=pk, inputs_purged_at__isnull=True).update(
            inputs_purged_at=now, updated_at=now
        ):
            return 0
        inputs = list(JobInput.objects.filter(job_id=pk))
        names = [f.name for inp in inputs for f in (inp.file, inp.thumbnail) if f]
        JobInput.objects.filter(job_id=pk).update(file="", thumbnail="")
        transaction.on_commit(lambda: _delete(names))
    return len(names)


def _purge_output(pk: int, *, now: datetime) -> int:
    with transaction.atomic():
        job = Job.objects.filter(pk=pk, output_purged_at__isnull=True).first()
        if job is None:
            return 0
        names = [job.output.name] if job.output else []
        Job.objects.filter(pk=pk).update(output_purged_at=now, output="", updated_at=now)
        transaction.on_commit(lambda: _delete(names))
    return len(names)


def _delete(names: list[str]) -> None:
    files_delete_unused(names)
