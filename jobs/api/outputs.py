"""Signed, expiring links to a finished job's video in the studio: what the
API answers as `output`. The token is the key (no session), and the video is
served with HTTP Range so players seek; links die after
API_OUTPUT_LINK_MAX_AGE, or when the video is deleted."""

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_GET

from jobs.models import Job, JobState
from jobs.net.ranged import ranged_file_response

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
    return ranged_file_response(
        request,
        default_storage.path(job.output.name),
        content_type="video/mp4",
        filename=f"{job.uuid}.mp4",
    )
