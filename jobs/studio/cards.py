"""What a job card shows, and which cards a page must refresh.

The browser animates progress bars and countdowns from the numbers here
(start, expected duration, deadlines), so an open page needs a request only
when a job really changes."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models import FailureCode, Job, JobSource, JobState
from jobs.models.card_stamps import card_stamp
from jobs.pipeline.lifecycle import expected_processing, stop_waiting_from
from jobs.pipeline.render_times import calls_back, finish_window
from jobs.pipeline.retention import inputs_expire_at
from jobs.providers.catalogue import label_of

# Small overlap so a change committed just as the page asked is not missed.
CHANGE_OVERLAP = timedelta(seconds=2)
# How long a page's cursor may rest on the card stamp's "nothing changed"
# before the jobs are asked again anyway: a stamp bump that was lost (the
# cache down for a moment) delays a card by at most this, never loses it.
STAMP_TRUST = timedelta(seconds=30)


@dataclass(frozen=True)
class PollIntervals:
    """How often an open Studio page asks for its cards, in ms. The page
    (static/js/studio/poller.js, and the bench's simulated page) reads them
    from #cards-poller: `slow` while a job is live, `fast` while a card is
    inside its predicted finish window, `fastest` while one is archiving or
    inside its window with a provider that calls back (its webhook moves the
    job on at once, so only the page's interval is left between the finish
    and the video)."""

    slow: int = 2000
    fast: int = 1000
    fastest: int = 500


CARDS_POLL = PollIntervals()

# Countdowns turn to the warning colour in their last stretch.
WARN_WITHIN = timedelta(hours=6)

# The line under a live job's bar while nothing ticks (see progress_at).
STATUS_TEXT = {
    JobState.QUEUED: "Waiting to be sent to the provider.",
    JobState.SUBMITTING: "Sending to the provider…",
    JobState.ARCHIVING: "Finished at the provider; saving the video…",
}

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
    # Epoch ms from which "Stop waiting" is offered (the page reveals it then).
    stop_from: int | None = None
    stop_due: bool = False  # overdue already as rendered (else revealed by the page)
    state_label: str = ""  # the pill: "Waiting at JoyPix" rather than "Processing"
    # Epoch ms of a processing job's predicted finish window (render_times):
    # the page asks for its cards every second meanwhile, every 2 s otherwise.
    finish_from: int | None = None
    finish_until: int | None = None
    # Its provider sends a webhook when done (data-webhooks): the page asks
    # every CARDS_POLL.fastest ms inside its window.
    calls_back: bool = False

    @property
    def can_stop_waiting(self) -> bool:
        return self.stop_from is not None

    @property
    def may_still_render(self) -> bool:
        """Failed while sending, not knowing whether the provider took it, or
        given up by its owner while the provider had it: "try again" warns
        that the first may still be rendering (and cost at the provider)."""
        return self.job.failure_code in (FailureCode.OUTCOME_UNKNOWN, FailureCode.STOPPED_WAITING)

    @property
    def countdown(self) -> Countdown | None:
        return self.countdowns[0] if self.countdowns else None

    @property
    def has_thumbnail(self) -> bool:
        return any(inp.has_picture for inp in self.job.inputs.all())

    @property
    def is_live(self) -> bool:
        return self.job.is_live

    @property
    def can_remix(self) -> bool:
        """A finished job whose input files are all still kept."""
        inputs = self.job.inputs.all()
        return not self.job.is_live and bool(inputs) and all(inp.file for inp in inputs)

    @property
    def retried_as(self) -> Job | None:
        retries = self.job.retries.all()
        return min(retries, key=lambda retry: retry.pk) if retries else None


def card_for(job: Job, *, now: datetime | None = None) -> Card:
    now = now or timezone.now()
    start = expected = None
    label = ""
    state_label = job.get_state_display()
    if job.state == JobState.PROCESSING and job.provider_state == "pending":
        # Accepted but not started (JoyPix's "submitted"): in its line, not rendering.
        provider = label_of(job.provider)
        state_label = f"Waiting at {provider}"
        progress = 5
        waited = short_duration((now - (job.submitted_at or now)).total_seconds())
        label = f"Waiting in {provider}’s line · sent {waited} ago"
    elif job.state == JobState.PROCESSING and job.submitted_at:
        start = _epoch_ms(job.submitted_at)
        expected = int(expected_processing(job).total_seconds() * 1000)
        progress, label = progress_at(start_ms=start, expected_ms=expected, now_ms=_epoch_ms(now))
    else:
        progress = {
            JobState.QUEUED: 0,
            JobState.SUBMITTING: 3,
            JobState.ARCHIVING: 92,
            JobState.COMPLETED: 100,
            JobState.FAILED: 100,
        }.get(job.state, 0)
    if job.state == JobState.QUEUED:
        place = place_in_line(job)
        if place > 1:
            label = f"Waiting to be sent · {ordinal(place)} in line"
    stop_from = stop_waiting_from(job)
    window = finish_window(job) if job.state == JobState.PROCESSING else None
    return Card(
        job=job,
        pill=PILL.get(job.state, "neutral"),
        progress=progress,
        progress_start=start,
        progress_expected=expected,
        countdowns=job_countdowns(job),
        status_text=label or STATUS_TEXT.get(job.state, ""),
        expired=_expired(job),
        source_mark=source_mark(job),
        stop_from=_epoch_ms(stop_from) if stop_from else None,
        stop_due=stop_from is not None and now >= stop_from,
        state_label=state_label,
        finish_from=_epoch_ms(window[0]) if window else None,
        finish_until=_epoch_ms(window[1]) if window else None,
        calls_back=window is not None and calls_back(job),
    )


def place_in_line(job: Job) -> int:
    """A queued job's place among the jobs waiting to be sent (everyone's, in
    the order the poller takes them, oldest first): 1 when it is next. Jobs
    from studio_jobs() carry the count (no query); any other asks once."""
    ahead = getattr(job, "queued_ahead", None)
    if ahead is None:
        ahead = Job.objects.filter(state=JobState.QUEUED, pk__lt=job.pk).count()
    return ahead + 1


def _queued_ahead():
    """For a queued job, how many queued jobs are ahead of it, in the same
    query as the cards (so a page's query count does not grow with them)."""
    ahead = (
        Job.objects.filter(state=JobState.QUEUED, pk__lt=OuterRef("pk"))
        .order_by()
        .values("state")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Case(
        When(state=JobState.QUEUED, then=Coalesce(Subquery(ahead), Value(0))),
        default=Value(None),
        output_field=IntegerField(),
    )


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def source_mark(job: Job) -> str:
    """The small mark of a job made through the REST API, naming its key."""
    if job.source != JobSource.API:
        return ""
    key = job.api_key
    if key is None:
        return "API · deleted key"
    return f"API · {key.name or f'sk_{key.prefix}_…'}"


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def progress_at(*, start_ms: int, expected_ms: int, now_ms: int) -> tuple[int, str]:
    """A rendering job's bar (percent) and the line under it, `now_ms` into a
    provider's run that began at `start_ms` and should take `expected_ms`.
    The page moves both every second with the same formula
    (static/js/studio/progress.js, progressAt); a browser test compares them."""
    span = max(expected_ms, 1)
    done = min(1.0, max(0.0, (now_ms - start_ms) / span))
    left = (start_ms + span - now_ms) / 1000
    if left > 0:
        label = f"Rendering · about {short_duration(left)} left"
    else:
        label = "Rendering · taking longer than expected…"
    return 5 + math.floor(done * 85), label


def short_duration(seconds: float) -> str:
    """3.4 -> "3 s", 125 -> "2 min 05 s", 900 -> "15 min"."""
    seconds = max(1, _round_half_up(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes < 10 else f"{minutes} min"


def _round_half_up(value: float) -> int:
    """As JavaScript's Math.round: a half goes up (Python's round() goes to even)."""
    whole = math.floor(value)
    return whole + 1 if value - whole >= 0.5 else whole


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
        .annotate(queued_ahead=_queued_ahead())
        .select_related("api_key")
        .prefetch_related("inputs", "retries")
        .order_by("-created_at", "-id")
    )


def cards_unchanged_since(user_id: int, since: datetime, *, now: datetime) -> bool:
    """True when the member's card stamp proves no card changed since the
    page's cursor, so the answer needs no query on the jobs. Unknown or
    close calls say False (the jobs are then asked), as does a cursor older
    than STAMP_TRUST or in the future."""
    if not (now - STAMP_TRUST < since <= now):
        return False
    stamp = card_stamp(user_id)
    if stamp is None:
        return False
    return stamp < (since - CHANGE_OVERLAP).timestamp() * 1000


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
