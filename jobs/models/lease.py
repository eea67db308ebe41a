from django.db import models


class Lease(models.Model):
    """A named, expiring claim, so only one process runs a loop at a time
    (e.g. the provider poller), whatever the broker and however many nodes."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
