"""Files: inputs for providers (signed links), and outputs and thumbnails for
members (signed-in, visibility checked), served with HTTP Range from the local
disk, or by a signed redirect to the object store (jobs/files/delivery.py)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.views.decorators.http import require_GET, require_safe

from jobs.files.delivery import stored_file_response
from jobs.pipeline.inputs import input_from_token
from jobs.pipeline.selectors import job_for_viewer

DAY = 86400


@require_safe  # some providers send HEAD before GET
def job_input(request, token: str, name: str):
    """A provider fetching an input. No session: the signed token is the key.
    Streamed, never redirected: a provider's fetcher may not follow a
    redirect, and the link must die when the job ends."""
    inp = input_from_token(token)
    if inp is None or inp.file.name.rsplit("/", 1)[-1] != name:
        raise Http404("This link has expired or the job has ended.")
    return stored_file_response(
        request, inp.file.name, content_type=inp.content_type, redirect=False
    )


@login_required
@require_GET
def job_video(request, pk: int):
    job = job_for_viewer(request.user, pk=pk)
    if not job.output:
        raise Http404("This job has no video.")
    download = request.GET.get("download") == "1"
    return stored_file_response(
        request,
        job.output.name,
        content_type="video/mp4",
        filename=f"lipsync-job-{job.pk}.mp4",
        attachment=download,
    )


@login_required
@require_GET
def job_thumbnail(request, pk: int):
    job = job_for_viewer(request.user, pk=pk)
    # The photo, or for a dub the video's frame (never the optional mask).
    image = job.inputs.with_picture().first()
    if image is None:
        raise Http404("This job has no thumbnail.")
    return stored_file_response(
        request, image.thumbnail.name, content_type="image/webp", cache_seconds=DAY
    )


@login_required
@require_GET
def job_poster(request, pk: int):
    """The gallery's still: the frame taken from the video when it was
    archived, or else the input's thumbnail (the photo, or a dub's frame)."""
    job = job_for_viewer(request.user, pk=pk)
    name = job.poster.name if job.poster else ""
    if not name:
        image = job.inputs.with_picture().first()
        name = image.thumbnail.name if image else ""
    if not name:
        raise Http404("This job has no poster.")
    kind = "image/jpeg" if name.lower().endswith((".jpg", ".jpeg")) else "image/webp"
    return stored_file_response(request, name, content_type=kind, cache_seconds=DAY)


@login_required
@require_GET
def job_input_media(request, pk: int, role: str):
    """One of a job's inputs (or its thumbnail, with ?thumbnail=1) for the
    gallery's players: same visibility as the video; gone once retention has
    removed it."""
    job = job_for_viewer(request.user, pk=pk)
    inp = job.inputs.filter(role=role).exclude(file="").first()
    if inp is None:
        raise Http404("This input is not kept any more.")
    if request.GET.get("thumbnail") == "1":
        if not inp.thumbnail:
            raise Http404("This input has no thumbnail.")
        return stored_file_response(
            request, inp.thumbnail.name, content_type="image/webp", cache_seconds=DAY
        )
    base = inp.file.name.rsplit("/", 1)[-1]
    suffix = base[base.rfind(".") :][:10] if "." in base else ""
    return stored_file_response(
        request,
        inp.file.name,
        content_type=inp.content_type,
        filename=f"lipsync-job-{job.pk}-{role}{suffix}",
    )
