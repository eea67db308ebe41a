"""bench/load.py's URLs: the studio's, and two hello-world views measured in
the same run as the yardstick (plain, and behind the sign-in)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path


def hello(request):
    return HttpResponse(b"Hello, world")


@login_required
def hello_signed_in(request):
    return HttpResponse(f"Hello, {request.user.get_username()}")


urlpatterns = [
    path("bench/hello/", hello),
    path("bench/hello-signed-in/", hello_signed_in),
    path("", include("lipsync_site.urls")),
]
