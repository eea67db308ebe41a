"""Answers that belong to no page: the icon browsers ask for at /favicon.ico."""

from functools import cache

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.views.decorators.http import require_safe

ICON = "img/icon.svg"


@cache
def _icon() -> bytes:
    # The studio's own static file (the source, not the collected copy), so it
    # is there with or without collectstatic.
    with open(finders.find(ICON), "rb") as f:
        return f.read()


@require_safe
def favicon(request):
    """Browsers ask for /favicon.ico on every page that names no icon (the
    admin's, a video opened on its own); the studio's mark answers, cached a day."""
    response = HttpResponse(_icon(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
