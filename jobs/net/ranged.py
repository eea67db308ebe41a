"""File responses that honour HTTP Range, so players can seek in a video
without downloading all of it. Single ranges only, as browsers send."""

import os
import re

from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024


def ranged_file_response(
    request, path: str, *, content_type: str, filename: str = "", attachment: bool = False
):
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        # A row that outlived its file (removed by retention or a delete)
        # is "gone", not a server error.
        raise Http404("This file is no longer kept.") from None
    header = request.headers.get("Range", "").strip()
    match = _RANGE.match(header)
    # No range, or one we don't parse (multiple ranges): send it all, as RFC 9110 allows.
    if not match or match.groups() == ("", ""):
        return _whole(path, content_type, filename, attachment)
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
        _read(path, start, end - start + 1), status=206, content_type=content_type
    )
    response["Content-Length"] = str(end - start + 1)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    if filename:
        kind = "attachment" if attachment else "inline"
        response["Content-Disposition"] = f'{kind}; filename="{filename}"'
    return response


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
