"""Reads that decide who sees which job."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404

from jobs.models import Job


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
