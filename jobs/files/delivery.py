"""Stored media to a browser or an HTTP client, after the caller has checked
who may have it.

On the local disk the studio serves the file itself, with HTTP Range. From an
object store, a member's browser is redirected to a signed link to the object
(short-lived: STORAGE_URL_MAX_AGE), so a video plays and seeks straight from
the store and never ties up a web worker; the studio's permission check runs
first on every request, and a link outlives it by minutes at most. Links the
studio hands to others (providers fetching inputs, the API's output link) are
streamed through the studio instead (redirect=False): their clients need not
follow redirects, and those links stop working exactly when the studio says
(the job ended, the video was deleted), not when a store's signature expires.
"""

from django.conf import settings
from django.http import Http404, HttpResponseRedirect

from jobs.files.storage import StoredReader, signed_url, stored_path
from jobs.net.ranged import ranged_file_response, ranged_response


def stored_file_response(
    request,
    name: str,
    *,
    content_type: str,
    filename: str = "",
    attachment: bool = False,
    redirect: bool = True,
    cache_seconds: int = 0,
):
    """The stored file `name`: served with Range, or (object store, `redirect`)
    a 302 to a signed link. `cache_seconds`: how long a browser may keep it."""
    if not name:
        raise Http404("This file is no longer kept.")
    if redirect:
        url = signed_url(name, content_type=content_type, filename=filename, attachment=attachment)
        if url is not None:
            # No HEAD first: a row whose file was removed is cleared in the
            # same step, so the row is the truth, and playback starts sooner.
            response = HttpResponseRedirect(url)
            # A kept redirect must not outlive its link's signature.
            keep = min(cache_seconds, settings.STORAGE_URL_MAX_AGE // 2)
            response["Cache-Control"] = f"private, max-age={keep}" if keep else "private, no-cache"
            return response
    path = stored_path(name)
    if path is not None:
        response = ranged_file_response(
            request, str(path), content_type=content_type, filename=filename, attachment=attachment
        )
    else:
        try:
            reader = StoredReader(name)
        except FileNotFoundError:
            raise Http404("This file is no longer kept.") from None
        response = ranged_response(
            request,
            size=reader.size,
            read=reader.read,
            content_type=content_type,
            filename=filename,
            attachment=attachment,
        )
    if cache_seconds:
        response["Cache-Control"] = f"private, max-age={cache_seconds}"
    return response
