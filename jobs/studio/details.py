"""A job's own page, for its owner and staff: everything the studio knows of
one job, in any state. Reads only; a fixed number of queries whatever the
job or the size of the database (tests assert it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404

from jobs.credits.pricing import terms_text
from jobs.models import Job, JobInput, JobState, LedgerEntry
from jobs.templatetags.studio_tags import duration

from .cards import Card, card_for

# Pictures first, then the sound, then a dub's optional mask (as the gallery).
ROLE_ORDER = {
    role: i
    for i, role in enumerate(("image", "video", "left_audio", "right_audio", "audio", "mask"))
}


def job_for_page(user: AbstractBaseUser, *, pk: int) -> Job:
    """The job for its page: the owner's, or any for staff; 404 for anyone
    else (never 403: another member's job ids are not confirmed). A deleted
    job keeps its page, for its ledger."""
    qs = Job.objects.select_related("owner", "api_key", "retried_from").prefetch_related(
        "inputs", "retries"
    )
    if not user.is_staff:
        qs = qs.filter(owner=user)
    job = qs.filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job


@dataclass(frozen=True)
class Moment:
    label: str
    at: datetime | None
    note: str = ""

    @property
    def happened(self) -> bool:
        return self.at is not None


@dataclass(frozen=True)
class JobDetails:
    job: Job
    card: Card
    inputs: list[JobInput]
    timeline: list[Moment]
    ledger: list[LedgerEntry]
    retries: list[Job]
    cost: str  # how the held credits come about, in one sentence

    @property
    def returned(self) -> int:
        """Credits of the hold given back: all of it on failure, the rest on completion."""
        job = self.job
        if job.state == JobState.FAILED:
            return job.credits_held
        if job.state == JobState.COMPLETED and job.credits_charged is not None:
            return job.credits_held - job.credits_charged
        return 0

    @property
    def seed_text(self) -> str:
        job = self.job
        asked = "random (−1)" if job.seed == -1 else str(job.seed)
        if job.provider_seed is None:
            return f"Asked: {asked}; the provider has not said which seed it used."
        if job.seed == job.provider_seed:
            return f"{job.provider_seed}, as asked; confirmed by the provider."
        return f"{job.provider_seed}, reported by the provider (asked: {asked})."


def job_details(job: Job) -> JobDetails:
    """The page's facts: one query (the ledger) beyond job_for_page's three."""
    inputs = sorted(job.inputs.all(), key=lambda inp: ROLE_ORDER.get(inp.role, 99))
    retries = sorted(job.retries.all(), key=lambda retry: retry.pk)
    ledger = list(
        LedgerEntry.objects.filter(job=job)
        .select_related("account", "created_by")
        .order_by("created_at", "id")
    )
    return JobDetails(
        job=job,
        card=card_for(job),
        inputs=inputs,
        timeline=timeline(job),
        ledger=ledger,
        retries=retries,
        cost=cost_text(job),
    )


def timeline(job: Job) -> list[Moment]:
    """Each step of the job's life with its time; steps not reached have none."""
    sent_note = ""
    if job.submit_attempts > 1:
        sent_note = f"after {job.submit_attempts} tries (the provider refused the earlier ones)"
    moments = [
        Moment("Created", job.created_at),
        Moment("Sent to the provider", job.sent_at, sent_note),
        Moment(
            "Accepted by the provider",
            job.submitted_at,
            f"task {job.provider_task_id}" if job.provider_task_id else "",
        ),
        Moment("First status from the provider", job.first_status_at),
        Moment("Completed at the provider", job.provider_completed_at),
        Moment("Video saved in the studio", job.archived_at),
    ]
    if job.state == JobState.FAILED:
        moments.append(Moment("Failed", job.finished_at))
    if job.deleted_at:
        moments.append(Moment("Deleted", job.deleted_at, "its files were removed"))
    return moments


def cost_text(job: Job) -> str:
    """'7.0 s of audio → 2 × 5 s = 10 s billed at 15 credits per 5 s.'"""
    if not job.credits_per_unit:
        return ""
    billed = job.units * job.unit_seconds
    if job.unit_seconds == 1:
        how = f"{billed} s billed"
    else:
        how = f"{job.units} × {job.unit_seconds} s = {billed} s billed"
    if job.min_seconds and billed <= job.min_seconds and job.input_seconds < job.min_seconds:
        how += f" (the {job.min_seconds} s minimum)"
    rate = terms_text(
        credits_per_unit=job.credits_per_unit, unit_seconds=job.unit_seconds, min_seconds=0
    )
    return f"{duration(job.input_seconds)} of audio → {how} at {rate}."
