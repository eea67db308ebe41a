"""The facts the studio keeps about a stored media file, shared by a staged
Upload and a job's JobInput, and the one function that copies them from one
row to another (a job taking its staged uploads, "try again", a remix)."""

from typing import Any

from django.db import models


class UploadKind(models.TextChoices):
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"
    VIDEO = "video", "Video"


# Kinds whose thumbnail stands for the file: a photo's own, a video's frame.
PICTURE_KINDS = (UploadKind.IMAGE, UploadKind.VIDEO)


class StoredMedia(models.Model):
    """A file the studio decoded and measured (never trusted by its name).

    Each model declares `file` (where it is kept) and has a `kind` (an
    UploadKind: a field on Upload, its role's on JobInput)."""

    thumbnail = models.FileField(upload_to="thumbs/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    duration = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # The file's SHA-256 (hex), so the same inputs are recognised whatever
    # their names; blank for files stored before it was kept.
    sha256 = models.CharField(max_length=64, blank=True)

    # What media_facts() copies: the measured facts, not the files.
    FACTS = ("original_name", "content_type", "size", "duration", "width", "height", "sha256")

    class Meta:
        abstract = True

    @property
    def is_picture(self) -> bool:
        """Whether a still of this file can stand for its job."""
        return self.kind in PICTURE_KINDS

    @property
    def has_picture(self) -> bool:
        """A still stands for this file (the job card's, the gallery's)."""
        return bool(self.thumbnail) and self.is_picture


def media_facts(media: StoredMedia) -> dict[str, Any]:
    """The measured facts of `media`, to store on another row of either model."""
    return {name: getattr(media, name) for name in StoredMedia.FACTS}
