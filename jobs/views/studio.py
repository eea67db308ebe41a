"""Pages for members making videos: the Studio and the shared gallery."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ..models import Job, JobState

PAGE_JOBS = 24


@login_required
def studio(request):
    jobs = request.user.jobs.filter(deleted_at__isnull=True)[:PAGE_JOBS]
    return render(request, "jobs/studio.html", {"jobs": jobs})


@login_required
def gallery(request):
    shared = (
        Job.objects.filter(shared=True, state=JobState.COMPLETED, deleted_at__isnull=True)
        .select_related("owner")
        .order_by("-finished_at", "-id")[:PAGE_JOBS]
    )
    return render(request, "jobs/gallery.html", {"shared": shared})
