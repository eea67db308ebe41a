"""Signed, expiring links under PUBLIC_BASE_URL through which providers fetch
a job's inputs. A link stops working when it expires or the job ends."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

from jobs.models import JobInput

_SALT = "jobs.input-link"


def input_link(inp: JobInput) -> str:
    token = signing.dumps(inp.pk, salt=_SALT, compress=True)
    name = inp.file.name.rsplit("/", 1)[-1]
    return settings.PUBLIC_BASE_URL + reverse("job_input", args=[token, name])


def input_from_token(token: str) -> JobInput | None:
    """The input a live link points at, or None (bad, expired, or job ended)."""
    try:
        pk = signing.loads(token, salt=_SALT, max_age=settings.INPUT_LINK_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    inp = JobInput.objects.select_related("job").filter(pk=pk).first()
    if inp is None or not inp.job.is_live or not inp.file:
        return None
    return inp
