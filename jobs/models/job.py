import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from .card_stamps import card_stamps_bump
from .ledger import Pool
from .media import StoredMedia, UploadKind


class JobMode(models.TextChoices):
    DIALOG = "dialog", "Dialog"
    TALKING_PHOTO = "talking_photo", "Talking photo"
    VIDEO_DUB = "video_dub", "Video dub"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    PROCESSING = "processing", "Processing"
    ARCHIVING = "archiving", "Archiving"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"

    @classmethod
    def terminal(cls) -> list[str]:
        return [cls.COMPLETED, cls.FAILED]

    @classmethod
    def live(cls) -> list[str]:
        return [s for s in cls.values if s not in cls.terminal()]


class Resolution(models.TextChoices):
    P480 = "480p", "480p"
    P720 = "720p", "720p"


class DialogOrder(models.TextChoices):
    """How a dialog's two clips play, for a provider that asks (lipsync.studio):
    one after the other (billed on both lengths) or at once (on the longer)."""

    SEQUENTIAL = "sequential", "They take turns"
    MEANWHILE = "meanwhile", "They speak at the same time"


class JobSource(models.TextChoices):
    """Where a job was asked for: the Studio page or the REST API."""

    STUDIO = "studio", "Studio"
    API = "api", "API"


class FailureCode(models.TextChoices):
    """Why a failed job failed, where the studio must act on it: "try again"
    warns after an unknown outcome; a job stopped by its owner says so."""

    # The studio lost contact while sending: the provider may have the job.
    OUTCOME_UNKNOWN = "outcome_unknown", "Outcome unknown"
    # Its owner stopped waiting for the provider (jobs.pipeline.lifecycle.job_stop_waiting).
    STOPPED_WAITING = "stopped_waiting", "Owner stopped waiting"


class JobQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        """As QuerySet.update; one that sets `updated_at` (a change a card
        shows) also bumps the owners' card stamps (card_stamps.py).

        The owners are read first, and the update is held to the rows read,
        so no row another transaction moved into the filter meanwhile is
        changed unseen: for the conditional updates of the lifecycle
        (`filter(pk=..., state=...)`) it is as if the update had run at the read.
        """
        if "updated_at" not in kwargs:
            return super().update(**kwargs)
        rows = dict(self.values_list("pk", "owner_id"))
        if not rows:
            return 0
        changed = super(JobQuerySet, self.filter(pk__in=list(rows))).update(**kwargs)
        if changed:
            card_stamps_bump(rows.values(), using=self.db)
        return changed

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        """As QuerySet.bulk_create, bumping the owners' card stamps too: new
        jobs are a change their pages show (benches and tests make jobs so)."""
        made = super().bulk_create(objs, *args, **kwargs)
        card_stamps_bump((job.owner_id for job in made), using=self.db)
        return made

    bulk_create.alters_data = True


class Job(models.Model):
    """One lip-sync video made by one provider for one member.

    The ledger is the truth about credits; `credits_held` and
    `credits_charged` repeat it for the cards. The rate the job was quoted
    is copied onto the job, so a later price change never re-prices it.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    # The public id the REST API answers with; the integer pk stays internal.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=10, choices=JobSource.choices, default=JobSource.STUDIO)
    # The credit pool the job holds and spends ("studio" or "api"); a retry keeps it.
    pool = models.CharField(max_length=10, choices=Pool.choices, default=Pool.STUDIO)
    api_key = models.ForeignKey(
        "jobs.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    # Where the API caller asked to hear the result (sent by the webhooks work).
    api_webhook = models.URLField(max_length=2000, blank=True)
    mode = models.CharField(max_length=20, choices=JobMode.choices)
    provider = models.CharField(max_length=40, help_text="Adapter slug, e.g. joypix.")
    provider_model = models.CharField(max_length=60)
    resolution = models.CharField(max_length=8, choices=Resolution.choices)
    prompt = models.TextField(blank=True)
    seed = models.BigIntegerField(default=-1, help_text="-1 lets the provider pick.")
    # The seed the provider says it used (JoyPix echoes its inputs), if it says.
    provider_seed = models.BigIntegerField(null=True, blank=True)
    shared = models.BooleanField(default=True, help_text="Shown in the team's gallery.")
    retried_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )
    # Blank unless the provider takes a speaking order (a dialog on lipsync.studio).
    dialog_order = models.CharField(max_length=20, choices=DialogOrder.choices, blank=True)

    state = models.CharField(max_length=20, choices=JobState.choices, default=JobState.QUEUED)
    error = models.TextField(blank=True)
    # Blank for most failures; set where the studio acts on the reason.
    failure_code = models.CharField(max_length=30, choices=FailureCode.choices, blank=True)
    # Who stopped waiting for the provider (when: finished_at).
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The provider's own word for a processing job, as last polled: "pending"
    # (JoyPix's "submitted": waiting in its line) or "processing".
    provider_state = models.CharField(max_length=20, blank=True)
    provider_task_id = models.CharField(max_length=200, blank=True, db_index=True)

    # Cost, as quoted when the job was made.
    input_seconds = models.FloatField(default=0, help_text="Measured duration that is billed.")
    unit_seconds = models.PositiveIntegerField(default=5)
    min_seconds = models.PositiveIntegerField(default=0, help_text="Shortest duration billed.")
    credits_per_unit = models.PositiveIntegerField(default=0)
    usd_per_unit = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    credits_held = models.PositiveIntegerField(default=0)
    credits_charged = models.PositiveIntegerField(null=True, blank=True)

    # Output
    output = models.FileField(upload_to="outputs/%Y/%m/", blank=True)
    output_url = models.URLField(max_length=2000, blank=True)
    output_seconds = models.FloatField(null=True, blank=True)
    output_width = models.PositiveIntegerField(null=True, blank=True)
    output_height = models.PositiveIntegerField(null=True, blank=True)

    # Work bookkeeping: our own attempt counts, since a task may run twice.
    submit_attempts = models.PositiveIntegerField(default=0)
    poll_count = models.PositiveIntegerField(default=0)
    archive_attempts = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # When a status request last went out: a provider webhook arriving within a
    # few seconds of one (a replay, or a second webhook) asks nothing more.
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # Status requests answered "not found" in a row, since when: a provider that
    # forgot the task fails the job after a few of them, not at the timeout.
    not_found_count = models.PositiveIntegerField(default=0)
    not_found_since = models.DateTimeField(null=True, blank=True)
    # Learning render times (jobs/pipeline/render_times.py): when the provider
    # last answered "not done yet", and so, once it answers "completed", an
    # estimate of the seconds from submission to its finish.
    provider_pending_at = models.DateTimeField(null=True, blank=True)
    provider_seconds = models.FloatField(null=True, blank=True)
    # The new-job form's one-time token: a second post of the same form (a
    # double click that got past the browser) finds this job instead of
    # making another. Blank for jobs made otherwise.
    form_token = models.CharField(max_length=32, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    # The timeline on the job's page: the (last) submission request went out,
    # the provider accepted it (submitted_at), its first status answer came.
    sent_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    first_status_at = models.DateTimeField(null=True, blank=True)
    provider_completed_at = models.DateTimeField(null=True, blank=True)
    provider_expires_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    archive_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Deleting a finished job removes its files; the row stays for the ledger.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # A small still of the output for the gallery, made when it is archived.
    poster = models.FileField(upload_to="posters/%Y/%m/", blank=True)
    # Retention removed these files (the row and its ledger stay).
    inputs_purged_at = models.DateTimeField(null=True, blank=True)
    output_purged_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "form_token"],
                condition=~Q(form_token=""),
                name="one_job_per_form_token",
            ),
            # The state machine's invariants, so no write (a bug, a shell, the
            # admin) can leave a job the pipeline would mishandle.
            models.CheckConstraint(condition=Q(state__in=JobState.values), name="job_state_known"),
            models.CheckConstraint(condition=Q(mode__in=JobMode.values), name="job_mode_known"),
            models.CheckConstraint(
                condition=Q(resolution__in=Resolution.values), name="job_resolution_known"
            ),
            models.CheckConstraint(
                condition=Q(dialog_order__in=["", *DialogOrder.values]),
                name="job_dialog_order_known",
            ),
            models.CheckConstraint(
                condition=Q(source__in=JobSource.values), name="job_source_known"
            ),
            models.CheckConstraint(condition=Q(pool__in=Pool.values), name="job_pool_known"),
            models.CheckConstraint(
                condition=Q(failure_code="") | Q(state=JobState.FAILED),
                name="job_failure_code_only_when_failed",
            ),
            # A capture never exceeds its hold; the job's copies say the same.
            models.CheckConstraint(
                condition=Q(credits_charged__isnull=True)
                | Q(credits_charged__lte=models.F("credits_held")),
                name="job_charged_within_held",
            ),
            # Only archiving charges, in the update that completes the job.
            models.CheckConstraint(
                condition=Q(credits_charged__isnull=True) | Q(state=JobState.COMPLETED),
                name="job_charged_only_when_completed",
            ),
            # Ended jobs have finished_at and live ones do not: retention and
            # the gallery go by it, and would purge a live job's inputs.
            models.CheckConstraint(
                condition=Q(state__in=JobState.terminal(), finished_at__isnull=False)
                | Q(state__in=JobState.live(), finished_at__isnull=True),
                name="job_finished_iff_ended",
            ),
            # Polling asks the provider about this task.
            models.CheckConstraint(
                condition=~Q(state=JobState.PROCESSING) | ~Q(provider_task_id=""),
                name="job_processing_has_task",
            ),
            # Archiving downloads this address.
            models.CheckConstraint(
                condition=~Q(state=JobState.ARCHIVING) | ~Q(output_url=""),
                name="job_archiving_has_output_url",
            ),
            # Only a finished job is deleted (its files go; a live job needs them).
            models.CheckConstraint(
                condition=Q(deleted_at__isnull=True) | Q(state__in=JobState.terminal()),
                name="job_deleted_only_when_ended",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="job_owner_recent"),
            models.Index(fields=["state", "next_poll_at"], name="job_state_due"),
            # The Studio's card updates (changed since) and "any job live?".
            models.Index(fields=["owner", "updated_at"], name="job_owner_updated"),
            models.Index(fields=["owner", "state"], name="job_owner_state"),
            # The Studio's history filtered by state: one range, newest first.
            models.Index(
                fields=["owner", "state", "-created_at", "-id"], name="job_owner_state_recent"
            ),
            # The gallery: finished videos, newest first, then its filters.
            # `state` leads so that SQLite, which has no statistics unless
            # ANALYZE ran, picks these over job_state_due (bench/RESULTS.md).
            models.Index(
                fields=["state", "-finished_at", "-id"],
                name="job_gallery_state_recent",
                condition=Q(state="completed", deleted_at__isnull=True),
            ),
            models.Index(
                fields=["owner", "state", "-finished_at", "-id"],
                name="job_gallery_owner_state",
                condition=Q(state="completed", deleted_at__isnull=True),
            ),
            # Prompt search on PostgreSQL: a trigram index, made in migration
            # 0009 (PostgreSQL only, so it is not declared here).
            # Learning render times: a provider, model and resolution's latest
            # finished jobs (render_times.render_times_learn).
            models.Index(
                fields=["provider", "provider_model", "resolution", "-submitted_at"],
                name="job_render_recent",
                condition=Q(provider_seconds__isnull=False),
            ),
            # Retention: finished jobs whose files are still kept.
            models.Index(
                fields=["finished_at"],
                name="job_retention_due",
                condition=Q(finished_at__isnull=False, output_purged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Job #{self.pk} ({self.get_mode_display()}, {self.get_state_display()})"

    def save(self, *args, **kwargs) -> None:
        # auto_now sets updated_at on every save: the card changed.
        super().save(*args, **kwargs)
        card_stamps_bump([self.owner_id], using=kwargs.get("using") or self._state.db)

    def get_absolute_url(self) -> str:
        """The job's own page (its owner and staff); the admin's "View on site"."""
        return reverse("job_page", args=[self.pk])

    @property
    def is_live(self) -> bool:
        return self.state in JobState.live()

    @property
    def units(self) -> int:
        return self.credits_held // self.credits_per_unit if self.credits_per_unit else 0

    @property
    def usd_held(self):
        return self.usd_per_unit * self.units


class InputRole(models.TextChoices):
    IMAGE = "image", "Photo"
    LEFT_AUDIO = "left_audio", "Left audio"
    RIGHT_AUDIO = "right_audio", "Right audio"
    AUDIO = "audio", "Audio"
    VIDEO = "video", "Video"
    MASK = "mask", "Mask"


# The roles whose still stands for the job: the photo, or a dub's video (a
# mask is an image too, but never the job's picture).
PICTURE_ROLES = (InputRole.IMAGE, InputRole.VIDEO)


class JobInputQuerySet(models.QuerySet):
    def with_picture(self) -> "JobInputQuerySet":
        """The database's side of StoredMedia.has_picture for inputs."""
        return self.filter(role__in=PICTURE_ROLES).exclude(thumbnail="")


class JobInput(StoredMedia):
    """An uploaded file a job sends to its provider, checked by decoding."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    role = models.CharField(max_length=20, choices=InputRole.choices)
    # Blank once deleted or purged by retention (the row stays for the record).
    file = models.FileField(upload_to="inputs/%Y/%m/", blank=True)

    objects = JobInputQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "role"], name="one_input_per_role"),
        ]
        # "You made this already": a member's earlier job with the same files.
        indexes = [models.Index(fields=["sha256"], name="jobinput_sha256")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} of job #{self.job_id}"

    @property
    def kind(self) -> str:
        """The upload kind this role takes: image, audio or video."""
        if self.role in (InputRole.IMAGE, InputRole.MASK):
            return UploadKind.IMAGE
        if self.role == InputRole.VIDEO:
            return UploadKind.VIDEO
        return UploadKind.AUDIO

    @property
    def is_picture(self) -> bool:
        return self.role in PICTURE_ROLES
