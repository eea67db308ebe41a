from django.conf import settings
from django.db import models


class UploadKind(models.TextChoices):
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"
    VIDEO = "video", "Video"


class Upload(models.Model):
    """A file a member uploaded and the studio decoded and measured, waiting
    to become a job's input. Staged on its own, so a bad file elsewhere in the
    form, or too few credits, never loses the good ones."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    kind = models.CharField(max_length=10, choices=UploadKind.choices)
    file = models.FileField(upload_to="uploads/%Y/%m/")
    thumbnail = models.FileField(upload_to="thumbs/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    duration = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_kind_display()})"
