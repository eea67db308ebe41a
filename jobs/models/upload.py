from django.conf import settings
from django.db import models

from .media import StoredMedia, UploadKind


class Upload(StoredMedia):
    """A file a member uploaded and the studio decoded and measured, waiting
    to become a job's input. Staged on its own, so a bad file elsewhere in the
    form, or too few credits, never loses the good ones."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    kind = models.CharField(max_length=10, choices=UploadKind.choices)
    file = models.FileField(upload_to="uploads/%Y/%m/")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_kind_display()})"
