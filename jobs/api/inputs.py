"""An API job's input files: given by URL (downloaded through the studio's
one SSRF guard) or uploaded in a multipart request, then checked exactly as
the Studio's uploads are (jobs.studio.uploads.upload_stage: the same
decoders, limits and messages). A refusal names the field it came from."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.files.uploadedfile import UploadedFile

from jobs.files import media
from jobs.files.storage import files_delete_unused
from jobs.models import Upload
from jobs.net.fetch import FetchError, url_download
from jobs.studio.uploads import upload_limit_bytes, upload_stage

from .errors import ApiError

# A URL input may pass through a CDN or signed storage: a few redirects are
# followed, each hop checked as a new address (never loopback).
MAX_REDIRECTS = 3
DOWNLOAD_SECONDS = 120.0


class _DownloadedFile(UploadedFile):
    """A downloaded file as upload_stage takes it (by its path on disk)."""

    def __init__(self, path: Path, name: str):
        super().__init__(open(path, "rb"), name=name, size=path.stat().st_size)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


def _name_of(url: str) -> str:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return (name or "download")[:255]


def input_stage(*, owner, kind: str, value, field: str) -> Upload:
    """Stage one input given as a URL (str) or an uploaded file. ApiError 422
    naming `field` when it is refused."""
    if isinstance(value, UploadedFile):
        try:
            return upload_stage(owner=owner, kind=kind, uploaded=value)
        except media.MediaError as exc:
            raise ApiError(422, str(exc), field=field, code="invalid_file") from None
    url = str(value).strip()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "download"
        try:
            url_download(
                url,
                path,
                max_bytes=upload_limit_bytes(),
                max_seconds=DOWNLOAD_SECONDS,
                max_redirects=MAX_REDIRECTS,
            )
        except FetchError as exc:
            # Its words never repeat the URL (which may carry a signature).
            raise ApiError(
                422, f"The file could not be fetched: {exc}", field=field, code="invalid_url"
            ) from None
        downloaded = _DownloadedFile(path, _name_of(url))
        try:
            return upload_stage(owner=owner, kind=kind, uploaded=downloaded)
        except media.MediaError as exc:
            raise ApiError(422, str(exc), field=field, code="invalid_file") from None
        finally:
            downloaded.close()


def inputs_discard(uploads) -> None:
    """Forget staged uploads no job took (a later field was refused)."""
    for upload in uploads:
        if Upload.objects.filter(pk=upload.pk).delete()[0]:
            files_delete_unused([upload.file.name, upload.thumbnail.name])
