"""Deleting stored media safely: a file goes only when no row points at it.

Inputs are copied for "try again" and remixes, so each job has its own files;
this is the guard behind that rule, for rows that share a file anyway (jobs
made before staged uploads were claimed by exactly one job shared them)."""

import logging
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db.models import Q

from jobs.models import Job, JobInput, Upload

log = logging.getLogger("jobs.files.storage")


def file_in_use(name: str) -> bool:
    """Whether any job, input or staged upload still points at `name`."""
    return (
        JobInput.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        or Upload.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        or Job.objects.filter(Q(output=name) | Q(poster=name)).exists()
    )


def files_delete_unused(names: Iterable[str]) -> int:
    """Delete each named file that nothing points at any more (call it once
    the rows that pointed at them have been cleared). Returns how many went."""
    deleted = 0
    for name in dict.fromkeys(n for n in names if n):
        if file_in_use(name):
            log.warning("kept %s: another job still uses it", name)
            continue
        default_storage.delete(name)
        deleted += 1
    return deleted
