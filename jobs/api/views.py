"""The studio's own page about the API (for signed-in members): what
jobs.api.guide gathers, drawn by templates/jobs/api_guide.html."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .guide import api_guide


@login_required
def api_guide_page(request):
    return render(request, "jobs/api_guide.html", {"guide": api_guide(request.user)})
