"""The API's URL patterns, for jobs/urls.py. Every API view takes up to
three files in one request (UploadLimitMiddleware reads this mark), and
needs no CSRF token: a Bearer key is not sent by browsers on their own."""

from functools import wraps

from django.urls import path

from . import joypix, lipsync
from .middleware import API_FILES
from .outputs import job_output


def _takes_files(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    wrapped.csrf_exempt = True
    wrapped.upload_files = API_FILES
    return wrapped


def _patterns(api):
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = _takes_files(pattern.callback)
    return patterns, app_name, namespace


urlpatterns = [
    # The videos' signed links: no key, the token is the key.
    path("api/v1/outputs/<str:token>/<str:name>", job_output, name="api_output"),
    path("api/v1/", _patterns(lipsync.api)),
    path("v1/", _patterns(joypix.api)),
]
