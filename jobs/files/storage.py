"""Stored media through Django's storage API only (the local disk or an
S3-compatible bucket, see settings.STORAGES): reading ranges of a stored file,
a real file for the decoders, signed links for browsers, and deleting safely:
a file goes only when no row points at it.

Inputs are copied for "try again" and remixes, so each job has its own files;
files_delete_unused is the guard behind that rule, for rows that share a file
anyway (jobs made before staged uploads were claimed by exactly one job shared
them)."""

import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q

from jobs.models import Job, JobInput, Upload

log = logging.getLogger("jobs.files.storage")

CHUNK = 256 * 1024


def file_in_use(name: str) -> bool:
    """Whether any job, input or staged upload still points at `name`."""
    return (
        JobInput.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        or Upload.objects.filter(Q(file=name) | Q(thumbnail=name)).exists()
        or Job.objects.filter(Q(output=name) | Q(poster=name)).exists()
    )


def files_delete_unused(names: Iterable[str]) -> int:
    """Delete each named file that nothing points at any more (call it once
    the rows that pointed at them have been cleared). Returns how many went."""
    deleted = 0
    for name in dict.fromkeys(n for n in names if n):
        if file_in_use(name):
            log.warning("kept %s: another job still uses it", name)
            continue
        default_storage.delete(name)
        deleted += 1
    return deleted


# --- Reading ---------------------------------------------------------------------------


def stored_path(name: str) -> Path | None:
    """The stored file's own path when the storage keeps files on this
    machine's disk; None for an object store, which has no paths."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        return None


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A real file holding the stored file, for what needs a path: PyAV
    (probing, taking frames) and Pillow seek around the file, which a network
    stream does badly, and media.py opens PyAV with the `file` protocol only.
    On the local disk it is the stored file itself; from an object store, a
    temporary copy streamed to disk (never held in memory), removed on exit."""
    path = stored_path(name)
    if path is not None:
        yield path
        return
    reader = StoredReader(name)
    with tempfile.TemporaryDirectory(prefix="stored-") as tmp:
        copy = Path(tmp) / f"copy{PurePosixPath(name).suffix[:10]}"
        with open(copy, "wb") as dst:
            # One streamed GET, chunk by chunk: S3File's own read would first
            # spool the whole object to another temporary file.
            for chunk in reader.read(0, reader.size):
                dst.write(chunk)
        yield copy


class StoredReader:
    """One stored file's size and ranged reads: from the disk, or from an
    object store by ranged GETs, so serving part of a long video never reads
    the rest of it. Raises FileNotFoundError when the file is gone."""

    def __init__(self, name: str) -> None:
        self.path = stored_path(name)
        if self.path is not None:
            self.size = self.path.stat().st_size
            self._file = None
        else:
            self._file = default_storage.open(name, "rb")  # S3: one HEAD
            self.size = self._file.size

    def read(self, start: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        if self.path is not None:
            with open(self.path, "rb") as fh:
                fh.seek(start)
                yield from _limited(fh, length)
            return
        obj = _s3_object(self._file)
        if obj is None:  # another kind of storage: its own file object
            with self._file as fh:
                fh.seek(start)
                yield from _limited(fh, length)
            return
        body = obj.get(Range=f"bytes={start}-{start + length - 1}")["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()


def _limited(fh, length: int) -> Iterator[bytes]:
    while length > 0:
        chunk = fh.read(min(CHUNK, length))
        if not chunk:
            break
        length -= len(chunk)
        yield chunk


def signed_url(
    name: str, *, content_type: str, filename: str = "", attachment: bool = False
) -> str | None:
    """A link straight to the file in the object store, signed for
    STORAGE_URL_MAX_AGE seconds, that answers with our content type and file
    name; None on the local disk, where the studio serves the file itself."""
    if stored_path(name) is not None:
        return None
    params = {"ResponseContentType": content_type}
    if filename:
        kind = "attachment" if attachment else "inline"
        params["ResponseContentDisposition"] = f'{kind}; filename="{filename}"'
    return default_storage.url(name, parameters=params, expire=settings.STORAGE_URL_MAX_AGE)


def _s3_object(fh):
    """django-storages' S3File keeps its boto3 Object (reads by range and
    downloads in parts go through it); None for other file objects."""
    return getattr(fh, "obj", None)
