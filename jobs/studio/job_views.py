"""A job's own page (owner and staff), live while the job is, and "Remix"
from a job's card or page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HTMX_STOP_POLLING

from jobs.gallery.services import RemixUnavailable, job_remix
from jobs.pipeline.selectors import job_for_owner

from .details import job_details, job_for_page

TEMPLATE = "jobs/job_detail.html"


@login_required
@require_GET
@vary_on_headers("HX-Request")
def job_page(request, pk: int):
    """The whole page; for its htmx poll (every 2 s while the job is live),
    the live part only, and once the job has ended that part for the last
    time with 286, which stops the poll."""
    job = job_for_page(request.user, pk=pk)
    details = job_details(job)
    context = {
        "d": details,
        "job": job,
        "card": details.card,
        "is_owner": job.owner_id == request.user.pk,
    }
    if request.htmx and request.htmx.target == "job-live":
        response = render(request, f"{TEMPLATE}#job-live-update", context)
        if not job.is_live:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, TEMPLATE, context)


@login_required
@require_POST
def job_remix_own(request, pk: int):
    """The owner's remix of any finished job of theirs (the gallery's remix
    takes completed ones others shared): its files and options in the form."""
    job = job_for_owner(request.user, pk=pk)
    try:
        url = job_remix(job=job, member=request.user)
    except RemixUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("job_page", pk=job.pk)
    messages.success(
        request,
        f"The files and settings of job #{job.pk} are in the form. "
        "Change anything you like (the seed too), then start the job.",
    )
    return redirect(url)
