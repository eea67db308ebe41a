"""Checking and staging uploads: each file is decoded (never trusted by its
name), measured, and kept as an Upload until a job takes it."""

import hashlib
import math
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from jobs.files import media
from jobs.files.storage import files_delete_unused
from jobs.models import StoredMedia, Upload, UploadKind, media_facts

STAGED_FOR = timedelta(hours=24)
MB = 1024 * 1024


def upload_limit_bytes() -> int:
    """The largest file a member may upload."""
    return settings.MAX_UPLOAD_MB * MB


def upload_too_large(size: int) -> str:
    """Why a file of `size` bytes is refused, in words a member can act on."""
    limit = settings.MAX_UPLOAD_MB
    return f"This file is {megabytes_over(size, limit)} MB; the limit is {limit} MB."


def megabytes_over(size: int, limit_mb: int) -> str:
    """`size` in MB for saying it is over `limit_mb`: one decimal below 10 MB
    and wherever whole MB would hide the excess (2.3, 10.4), and never the
    limit itself (2 MB and one byte is 2.1)."""
    mb = size / MB
    for shown in (f"{mb:.0f}", f"{mb:.1f}") if mb >= 10 else (f"{mb:.1f}",):
        if float(shown) > limit_mb:
            return shown.removesuffix(".0")
    return f"{math.ceil(mb * 10) / 10:.1f}"


def upload_stage(*, owner, kind: str, uploaded: UploadedFile) -> Upload:
    """Decode and measure `uploaded`, then keep it, named by the format it
    decoded as (never by the client's name). Raises media.MediaError."""
    if uploaded.size > upload_limit_bytes():
        raise media.MediaError(upload_too_large(uploaded.size))
    with _local_path(uploaded) as path:
        info = _probe(kind, path)
        upload = Upload(
            owner=owner,
            kind=kind,
            original_name=(uploaded.name or "upload")[:255],
            content_type=info.content_type,
            size=uploaded.size,
            duration=getattr(info, "duration", None),
            width=getattr(info, "width", None),
            height=getattr(info, "height", None),
            sha256=file_sha256(path),
        )
        stem = uuid.uuid4().hex
        with open(path, "rb") as fh:
            upload.file.save(f"{stem}{info.extension}", File(fh), save=False)
        if kind in (UploadKind.IMAGE, UploadKind.VIDEO):
            # A small picture for the job card: the photo, or a video's frame.
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "thumb.webp"
                if kind == UploadKind.IMAGE:
                    thumb = media.make_thumbnail(path, out)
                else:
                    thumb = media.poster_frame(path, out, max_width=480)
                with open(thumb, "rb") as fh:
                    upload.thumbnail.save(f"{stem}.webp", File(fh), save=False)
    upload.save()
    return upload


def file_sha256(path: Path) -> str:
    """The file's content hash: the same inputs are recognised by it ("You
    made this already"), whatever the files are called."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_copy(media: StoredMedia, *, owner) -> Upload:
    """A fresh staged copy of a stored file, an input or an upload (for "try
    again" and remixes), so deleting one job never takes another's inputs."""
    copy = Upload(owner=owner, kind=media.kind, **media_facts(media))
    with default_storage.open(media.file.name, "rb") as fh:
        copy.file.save(Path(media.file.name).name, File(fh), save=False)
    if media.thumbnail:
        with default_storage.open(media.thumbnail.name, "rb") as fh:
            copy.thumbnail.save(Path(media.thumbnail.name).name, File(fh), save=False)
    copy.save()
    return copy


def uploads_purge_stale() -> int:
    """Forget staged uploads no job took within a day, files included."""
    stale = Upload.objects.filter(created_at__lt=timezone.now() - STAGED_FOR)
    count = 0
    for upload in stale:
        # Row first, count checked: a job claiming this upload at the same
        # moment wins it (it locks the row), and then its files stay.
        if Upload.objects.filter(pk=upload.pk).delete()[0]:
            files_delete_unused([upload.file.name, upload.thumbnail.name])
            count += 1
    return count


def _probe(kind: str, path: Path):
    if kind == UploadKind.IMAGE:
        return media.probe_image(path)
    if kind == UploadKind.AUDIO:
        return media.probe_audio(path, max_seconds=settings.MAX_MEDIA_SECONDS)
    if kind == UploadKind.VIDEO:
        return media.probe_video(path, max_seconds=settings.MAX_MEDIA_SECONDS)
    raise ValueError(f"unknown upload kind {kind!r}")


@contextmanager
def _local_path(uploaded: UploadedFile):
    """A path on disk for the decoder: the upload's own temporary file when
    Django streamed it to one, else a copy of the in-memory upload (named
    without the client's name: the decoders go by content)."""
    if hasattr(uploaded, "temporary_file_path"):
        yield Path(uploaded.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
        uploaded.seek(0)
        shutil.copyfileobj(uploaded, tmp)
        tmp.flush()
        yield Path(tmp.name)
