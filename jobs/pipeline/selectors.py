"""Reads that decide who sees which job, and which earlier job a new one repeats."""

from collections.abc import Mapping
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from jobs.models import Job, JobState, Upload

# "You made this already" looks this far back.
MADE_ALREADY_WITHIN = timedelta(days=30)


def jobs_visible_to(user: AbstractBaseUser) -> QuerySet[Job]:
    """Staff see every job; members their own and what others shared."""
    qs = Job.objects.filter(deleted_at__isnull=True)
    if user.is_staff:
        return qs
    return qs.filter(Q(owner=user) | Q(shared=True, state="completed"))


def job_for_viewer(user: AbstractBaseUser, *, pk: int) -> Job:
    job = jobs_visible_to(user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job


def job_for_owner(user: AbstractBaseUser, *, pk: int) -> Job:
    """For actions: only the owner acts on a job (404 for anyone else)."""
    job = Job.objects.filter(pk=pk, owner=user, deleted_at__isnull=True).first()
    if job is None:
        raise Http404("No such job.")
    return job


def job_made_already(
    *,
    owner: AbstractBaseUser,
    mode: str,
    provider: str,
    resolution: str,
    prompt: str,
    seed: int,
    dialog_order: str,
    files: Mapping[str, Upload],
) -> Job | None:
    """The member's newest job of the last 30 days, not failed and not
    deleted, with the same options and the same files by content (SHA-256,
    role by role, no more and no fewer): making it again would most likely
    pay for the same video twice. None when a file has no hash (stored
    before hashes were kept) or nothing matches."""
    hashes = {role: upload.sha256 for role, upload in files.items()}
    if not hashes or not all(hashes.values()):
        return None
    candidates = Job.objects.filter(
        owner=owner,
        deleted_at__isnull=True,
        created_at__gte=timezone.now() - MADE_ALREADY_WITHIN,
        mode=mode,
        provider=provider,
        resolution=resolution,
        prompt=prompt,
        seed=seed,
        dialog_order=dialog_order,
    ).exclude(state=JobState.FAILED)
    for role, digest in hashes.items():
        candidates = candidates.filter(inputs__role=role, inputs__sha256=digest)
    for job in candidates.order_by("-created_at", "-id").prefetch_related("inputs")[:5]:
        if {inp.role: inp.sha256 for inp in job.inputs.all()} == hashes:
            return job
    return None
