"""Signed, expiring links to a finished job's video in the studio: what the
API answers as `output`. The token is the key (no session), and the video is
served with HTTP Range so players seek; links die after
API_OUTPUT_LINK_MAX_AGE, or when the video is deleted. From an object store
the video is streamed through the studio, not redirected: any HTTP client
(curl without -L too) gets the bytes, and Range works as the API documents."""

from django.conf import settings
from django.core import signing
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_GET

from jobs.files.delivery import stored_file_response
from jobs.models import Job, JobState

_SALT = "jobs.api.output-link"


def output_link(job: Job) -> str:
    token = signing.dumps(str(job.uuid), salt=_SALT)
    return settings.PUBLIC_BASE_URL + reverse("api_output", args=[token, f"{job.uuid}.mp4"])


def job_from_output_token(token: str) -> Job | None:
    try:
        public_id = signing.loads(token, salt=_SALT, max_age=settings.API_OUTPUT_LINK_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    job = Job.objects.filter(
        uuid=public_id, state=JobState.COMPLETED, deleted_at__isnull=True
    ).first()
    return job if job is not None and job.output else None


@require_GET
def job_output(request, token: str, name: str):
    job = job_from_output_token(token)
    if job is None:
        raise Http404("This link has expired or its video is no longer kept.")
    return stored_file_response(
        request,
        job.output.name,
        content_type="video/mp4",
        filename=f"{job.uuid}.mp4",
        redirect=False,
    )
