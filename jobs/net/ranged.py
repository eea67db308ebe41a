"""Responses that honour HTTP Range, so players can seek in a video without
downloading all of it. Single ranges only, as browsers send. The bytes come
from a local file (ranged_file_response) or from any reader of byte ranges
(ranged_response: an object store's ranged GETs)."""

import os
import re
from collections.abc import Callable, Iterator
from functools import partial

from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024

# read(start, length) yields those bytes of the file, in chunks.
RangeReader = Callable[[int, int], Iterator[bytes]]


def ranged_file_response(
    request, path: str, *, content_type: str, filename: str = "", attachment: bool = False
):
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        # A row that outlived its file (removed by retention or a delete)
        # is "gone", not a server error.
        raise Http404("This file is no longer kept.") from None
    return ranged_response(
        request,
        size=size,
        read=partial(_read, path),
        content_type=content_type,
        filename=filename,
        attachment=attachment,
        # The whole file as a FileResponse: the server may send it with sendfile.
        whole=partial(_whole, path, content_type, filename, attachment),
    )


def ranged_response(
    request,
    *,
    size: int,
    read: RangeReader,
    content_type: str,
    filename: str = "",
    attachment: bool = False,
    whole: Callable[[], HttpResponse] | None = None,
):
    """The file of `size` bytes that `read` reads: all of it, or the range the
    request asks for (206), or 416 for a range outside it."""
    header = request.headers.get("Range", "").strip()
    match = _RANGE.match(header)
    # No range, or one we don't parse (multiple ranges): send it all, as RFC 9110 allows.
    if not match or match.groups() == ("", ""):
        if whole is not None:
            return whole()
        response = StreamingHttpResponse(read(0, size), content_type=content_type)
        response["Content-Length"] = str(size)
        response["Accept-Ranges"] = "bytes"
        _disposition(response, filename, attachment)
        return response
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        length = min(int(last), size)
        start, end = size - length, size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    response = StreamingHttpResponse(
        read(start, end - start + 1), status=206, content_type=content_type
    )
    response["Content-Length"] = str(end - start + 1)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    _disposition(response, filename, attachment)
    return response


def _disposition(response, filename: str, attachment: bool) -> None:
    if filename:
        kind = "attachment" if attachment else "inline"
        response["Content-Disposition"] = f'{kind}; filename="{filename}"'


def _whole(path, content_type, filename, attachment):
    response = FileResponse(
        open(path, "rb"),
        content_type=content_type,
        as_attachment=attachment,
        filename=filename or None,
    )
    response["Accept-Ranges"] = "bytes"
    return response


def _read(path: str, start: int, length: int):
    with open(path, "rb") as fh:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
