"""What a job card shows, and which cards a page must refresh.

The browser animates progress bars and countdowns from the numbers here
(start, expected duration, deadlines), so an open page needs a request only
when a job really changes."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from jobs.models import Job, JobSource, JobState
from jobs.pipeline.lifecycle import expected_processing
from jobs.pipeline.retention import inputs_expire_at

# Small overlap so a change committed just as the page asked is not missed.
CHANGE_OVERLAP = timedelta(seconds=2)
# Countdowns turn to the warning colour in their last stretch.
WARN_WITHIN = timedelta(hours=6)

PILL = {
    JobState.QUEUED: "neutral",
    JobState.SUBMITTING: "info",
    JobState.PROCESSING: "info",
    JobState.ARCHIVING: "info",
    JobState.COMPLETED: "success",
    JobState.FAILED: "danger",
}


@dataclass(frozen=True)
class Countdown:
    label: str
    until: datetime
    warn_from: datetime


@dataclass(frozen=True)
class Card:
    job: Job
    pill: str
    progress: int  # percent, as of rendering
    progress_start: int | None  # epoch ms the estimate runs from
    progress_expected: int | None  # ms the provider is expected to take
    countdowns: tuple[Countdown, ...]
    status_text: str = ""
    expired: tuple[str, ...] = ()  # what retention removed, and when
    source_mark: str = ""  # "API · render script" for a job a script made

    @property
    def countdown(self) -> Countdown | None:
        return self.countdowns[0] if self.countdowns else None

    @property
    def has_thumbnail(self) -> bool:
        return any(
            inp.thumbnail and inp.role in ("image", "video") for inp in self.job.inputs.all()
        )

    @property
    def is_live(self) -> bool:
        return self.job.is_live


def card_for(job: Job, *, now: datetime | None = None) -> Card:
    now = now or timezone.now()
    start = expected = None
    if job.state == JobState.PROCESSING and job.submitted_at:
        expected_td = expected_processing(job)
        start = int(job.submitted_at.timestamp() * 1000)
        expected = int(expected_td.total_seconds() * 1000)
        done = (now - job.submitted_at) / expected_td if expected_td else 0
        progress = 5 + int(min(done, 1.0) * 85)
    else:
        progress = {
            JobState.QUEUED: 0,
            JobState.SUBMITTING: 3,
            JobState.ARCHIVING: 92,
            JobState.COMPLETED: 100,
            JobState.FAILED: 100,
        }.get(job.state, 0)
    return Card(
        job=job,
        pill=PILL.get(job.state, "neutral"),
        progress=progress,
        progress_start=start,
        progress_expected=expected,
        countdowns=job_countdowns(job),
        status_text=_status_text(job, now, start, expected),
        expired=_expired(job),
        source_mark=source_mark(job),
    )


def source_mark(job: Job) -> str:
    """The small mark of a job made through the REST API, naming its key."""
    if job.source != JobSource.API:
        return ""
    key = job.api_key
    if key is None:
        return "API · deleted key"
    return f"API · {key.name or f'sk_{key.prefix}_…'}"


def _status_text(job: Job, now: datetime, start: int | None, expected: int | None) -> str:
    """The line under the progress bar; the browser keeps the estimate ticking."""
    if job.state == JobState.QUEUED:
        return "Waiting to be sent to the provider."
    if job.state == JobState.SUBMITTING:
        return "Sending to the provider…"
    if job.state == JobState.ARCHIVING:
        return "Finished at the provider; saving the video…"
    if job.state == JobState.PROCESSING and start is not None and expected is not None:
        left = (start + expected) / 1000 - now.timestamp()
        if left > 0:
            return f"Rendering · about {_short(left)} left"
        return "Rendering · taking longer than expected…"
    return ""


def _short(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes < 10 else f"{minutes} min"


def job_countdowns(job: Job) -> tuple[Countdown, ...]:
    """Deadlines that apply to the job's files, soonest first (cards and the
    gallery show them; the browser ticks them)."""
    found = []
    if job.state == JobState.ARCHIVING and job.provider_expires_at:
        found.append(
            Countdown(
                "Provider deletes it in",
                job.provider_expires_at,
                job.provider_expires_at - WARN_WITHIN,
            )
        )
    if job.state == JobState.COMPLETED and job.archive_expires_at and not job.output_purged_at:
        found.append(
            Countdown(
                "Video deleted in",
                job.archive_expires_at,
                job.archive_expires_at - timedelta(days=1),
            )
        )
    inputs_until = inputs_expire_at(job)
    if inputs_until is not None:
        found.append(Countdown("Inputs deleted in", inputs_until, inputs_until - timedelta(days=1)))
    return tuple(sorted(found, key=lambda c: c.until))


def _expired(job: Job) -> tuple[str, ...]:
    marks = []
    if job.output_purged_at:
        marks.append(f"Video expired on {job.output_purged_at:%-d %b %Y}")
    if job.inputs_purged_at:
        marks.append(f"Inputs removed on {job.inputs_purged_at:%-d %b %Y}")
    return tuple(marks)


def studio_jobs(user) -> QuerySet[Job]:
    """The member's own jobs, newest first, with what a card needs."""
    return (
        Job.objects.filter(owner=user, deleted_at__isnull=True)
        .select_related("api_key")
        .prefetch_related("inputs", "retries")
        .order_by("-created_at", "-id")
    )


def cards_changed_since(user, since: datetime) -> list[Card]:
    now = timezone.now()
    jobs = studio_jobs(user).filter(updated_at__gte=since - CHANGE_OVERLAP)
    return [card_for(job, now=now) for job in jobs]


def cards_for_page(
    cards: list[Card], *, newest: int | None, oldest: int | None
) -> tuple[list[Card], list[Card]]:
    """Split changed cards by what a Studio page holds, given the creation
    times (epoch ms) of its newest and oldest card: (new, held). A card newer
    than every card there is new to it and goes first; one within its range
    replaces its own; an older one (beyond the page, or one that retention
    just touched) is not the page's to show. A page with no card holds none."""
    new, held = [], []
    for card in cards:
        created = int(card.job.created_at.timestamp() * 1000)  # as the card's data-created
        if newest is None or created > newest:
            new.append(card)
        elif oldest is not None and created >= oldest:
            held.append(card)
    return new, held


def has_live_jobs(user) -> bool:
    return Job.objects.filter(
        owner=user, deleted_at__isnull=True, state__in=JobState.live()
    ).exists()
