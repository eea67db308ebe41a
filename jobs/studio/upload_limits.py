"""How much a request may send, refused before it is read.

MAX_UPLOAD_MB is per file. A view says how many files it takes
(`accepts_files`); a request that declares (Content-Length) more than that
many files plus the room Django gives a form's other fields
(DATA_UPLOAD_MAX_MEMORY_SIZE) is refused by UploadLimitMiddleware before any
of its body is read: on the upload's field or the form when the view says how
to draw that, else with the 413 page. Under WSGI a body is never read past
its declared length (and not at all without one), so this bounds everything
a request can make the studio read.

Within that bound each file streams to a temporary file, and only up to
MAX_UPLOAD_MB (LimitedUploadHandler): past it the temporary file is deleted
at once and the rest of that file is only counted, so the member is told how
large it is on its own field, with the form's other fields still read.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from .uploads import MB, megabytes_over, upload_limit_bytes, upload_too_large

# refusal(request, message, status, **view_kwargs) -> the answer
Refusal = Callable[..., HttpResponse]


def request_limit(files: int) -> int:
    """The most a request to a view that takes `files` files may declare."""
    return files * upload_limit_bytes() + settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def accepts_files(count: int, *, refusal: Refusal | None = None):
    """Mark a view that takes up to `count` files in one request. `refusal`
    draws a request refused before it was read where the member is looking
    (the upload's field, the form); without it they get the 413 page."""

    def mark(view):
        view.upload_files = count
        view.upload_refusal = refusal
        return view

    return mark


class UploadLimitMiddleware:
    """Refuses a request declaring more than its view takes, before its body
    is read. Placed before CsrfViewMiddleware, which reads the body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        files = getattr(view_func, "upload_files", 0)
        refusal = getattr(view_func, "upload_refusal", None)
        if refusal is None or not request.user.is_authenticated:
            refusal = refused_page
        declared = _declared_length(request)
        if declared > request_limit(files):
            return refusal(request, _too_large(declared, files), 413, **view_kwargs)
        if files and request.method == "POST" and request.content_type == "multipart/form-data":
            # Read here, not in the CSRF check, so that a body Django cannot
            # parse (a file name too long for its part header) is told on the
            # field rather than with a bare "Bad Request".
            try:
                request.POST  # noqa: B018 - reading it parses the body
            except MultiPartParserError as exc:
                return refusal(request, _unreadable(exc, files), 400, **view_kwargs)
        return None


def refused_page(request: HttpRequest, message: str, status: int, **_view_kwargs) -> HttpResponse:
    """The page (or, for htmx, the message alone) for a refused request."""
    template = "jobs/refused.html#refusal" if request.htmx else "jobs/refused.html"
    return render(request, template, {"message": message}, status=status)


class TooLargeUpload(UploadedFile):
    """A file refused for its size: its name and size, none of its bytes.
    upload_stage refuses it with the size, like any file over the limit."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        super().__init__(BytesIO(), name, content_type, size, charset, content_type_extra)


class LimitedUploadHandler(FileUploadHandler):
    """Streams each file to a temporary file (the decoders want a path), and
    no more than MAX_UPLOAD_MB of it: past that, the temporary file is
    deleted at once and the rest is counted for the message, not kept."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.over = False
        # Not named after the client's file: an extension hundreds of
        # characters long would make the temporary file's name too long.
        self.file = TemporaryUploadedFile(
            "upload", self.content_type, 0, self.charset, self.content_type_extra
        )
        self.file.name = self.file_name  # shortened to 255 characters, extension kept

    def receive_data_chunk(self, raw_data, start):
        if not self.over and start + len(raw_data) > upload_limit_bytes():
            self.over = True
            self.file.close()  # a NamedTemporaryFile: closing deletes it
        if not self.over:
            self.file.write(raw_data)
        return None

    def file_complete(self, file_size):
        if self.over:
            return TooLargeUpload(
                self.file.name, self.content_type, file_size, self.charset, self.content_type_extra
            )
        self.file.seek(0)
        self.file.size = file_size
        return self.file

    def upload_interrupted(self):
        # The body ended inside a file: nothing of it is kept.
        if hasattr(self, "file"):
            self.file.close()


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _too_large(declared: int, files: int) -> str:
    limit = settings.MAX_UPLOAD_MB
    if files == 1:
        # The file is nearly all of the request: its size, as on any refusal.
        return upload_too_large(declared)
    if files > 1:
        shown = megabytes_over(declared, files * limit)
        return f"The files sent come to {shown} MB; the limit is {limit} MB a file."
    most = request_limit(0) // MB
    shown = megabytes_over(declared, most)
    return f"This request is {shown} MB; at most {most} MB can be sent here."


def _unreadable(exc: MultiPartParserError, files: int) -> str:
    # Django refuses a part whose headers pass 1 KB; a file name of some
    # 900 characters is what does that in practice.
    if "header size" in str(exc):
        if files == 1:
            return "This file’s name is too long to read; rename the file and choose it again."
        return "A file’s name is too long to read; rename it and choose the file again."
    return "The upload could not be read; choose the file again."
