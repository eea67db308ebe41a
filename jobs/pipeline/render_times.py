"""How long a job will take at its provider: learnt from the studio's own
finished jobs per provider, model and resolution, seeded from the provider
page's figure (the sandbox's SANDBOX_RTF when the sandbox stands in) until
enough jobs exist. schedule.py does the arithmetic; this module stores it.

- `render_times_learn(job)`: when a poll finds a job completed, its finish is
  estimated (between the last "not done" answer and this one, and no earlier
  than submission + the execution time the provider reports, if it does),
  and the row of its provider, model and resolution is rewritten from the
  latest POLL_LEARN_JOBS such jobs (newer ones weigh more; a run of jobs all
  slower or faster than before moves the older ones with them: a provider
  that changes speed moves the schedule within schedule.SHIFT_JOBS jobs).
  Stored, so no poll recomputes it.
- `render_prediction(job)`: the distribution for a job (learnt, blended with
  the page's figure while fewer than schedule.MIN_JOBS taught it).
- `render_expected(job)`: its median, the one ETA the cards, the quote and the
  reconciler show.
- `lag_target(job)`: the most seconds between its polls where it is likely
  to finish: what is left of a POLL_MATCH_SECONDS poller's p95 after the
  studio's own archive and page, as measured on the same latest jobs (their
  seconds from a poll seeing them done to the video archived); the fixed
  POLL_LAG_TARGET_SECONDS until MIN_JOBS were archived.
- `finish_window(job)`: when a submitted job will most likely be done (its
  P_LOW to P_HIGH), plus the lag target: an open Studio page asks for its
  cards more often meanwhile (static/js/studio/poller.js).
- `render_times_restart(provider)`: forget what was learnt and start again
  from the page's figures, learning only from jobs submitted from now on
  (staff, in the admin; and when a provider's account changes where its
  jobs go, e.g. from the sandbox to the real provider).

Rows are read all at once and kept MEMO_SECONDS per process, so a page of
cards or a round of polls costs at most one query for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.models import Job, RenderTimes
from jobs.providers import catalogue
from jobs.providers.routing import provider_destination, sandbox_rtf

from .schedule import (
    MIN_JOBS,
    OVERHEAD_PROBS,
    P_HIGH,
    P_LOW,
    PROBS,
    Prediction,
    Schedule,
    blend,
    follow_shift,
    lag_to_match,
    learn,
    prior,
    quantiles_at,
)
from .webhooks import webhooks_enabled

log = logging.getLogger("jobs.pipeline.render_times")

MEMO_SECONDS = 5.0
_memo_lock = threading.Lock()
_memo: dict[str, object] = {"at": None, "rows": {}}


def render_key(job: Job) -> tuple[str, str, str]:
    model = job.provider_model
    if not model and job.mode:
        try:
            model = catalogue.model_for(job.provider, job.mode)
        except (KeyError, catalogue.NotOffered):
            model = ""
    return job.provider, model, job.resolution


def page_prior(job: Job) -> Prediction:
    rtf = sandbox_rtf(job.provider)
    if rtf is None:
        rtf = catalogue.provider_facts(job.provider).rtf(job.resolution)
    return prior(rtf)


@dataclass(frozen=True)
class Learnt:
    prediction: Prediction | None  # None: restarted, nothing learnt since
    lag: float | None  # the matched lag target; None: not measured yet


def matched_lag(after_seen: list[float]) -> float | None:
    """The lag target a row's measured archive time gives (schedule.lag_to_match);
    None while it is not measured or matching is off (POLL_MATCH_SECONDS=0)."""
    match = settings.POLL_MATCH_SECONDS
    if not match or len(after_seen) != len(OVERHEAD_PROBS):
        return None
    # The page asks every CARDS_POLL.fastest ms while a card is archiving.
    from jobs.studio.cards import CARDS_POLL  # noqa: PLC0415 (cards imports this module)

    return lag_to_match(0.95 * match, after_seen, page_wait=CARDS_POLL.fastest / 1000)


def _rows() -> dict[tuple[str, str, str], Learnt]:
    now = time.monotonic()
    with _memo_lock:
        at = _memo["at"]
        if at is not None and now - at < MEMO_SECONDS:  # type: ignore[operator]
            return _memo["rows"]  # type: ignore[return-value]
    rows = {
        (r.provider, r.provider_model, r.resolution): Learnt(
            Prediction(tuple(r.quantiles), r.samples) if len(r.quantiles) == len(PROBS) else None,
            matched_lag(r.after_seen),
        )
        for r in RenderTimes.objects.all()
    }
    with _memo_lock:
        _memo.update(at=now, rows=rows)
    return rows


def render_times_forget() -> None:
    """Drop this process's memo (tests; a new row is put in it directly)."""
    with _memo_lock:
        _memo.update(at=None, rows={})


def render_prediction(job: Job) -> Prediction:
    row = _rows().get(render_key(job))
    return blend(row.prediction if row else None, page_prior(job))


def lag_target(job: Job) -> float:
    """The detection-lag target of `job`'s schedule (schedule.lag_to_match)."""
    row = _rows().get(render_key(job))
    if row is None or row.lag is None:
        return settings.POLL_LAG_TARGET_SECONDS
    return row.lag


def render_expected(job: Job) -> timedelta:
    """The median predicted time from submission to the provider's finish."""
    return timedelta(seconds=max(job.input_seconds, 1.0) * render_prediction(job).median)


def finish_window(job: Job) -> tuple[datetime, datetime] | None:
    """From the predicted P_LOW finish of a submitted job to its P_HIGH plus
    its lag target (the last poll that sees a job finishing there):
    the span in which its card most likely turns to "archiving", then to
    "completed". None before submission."""
    if job.submitted_at is None:
        return None
    prediction = render_prediction(job)
    seconds = max(job.input_seconds, 1.0)
    start = job.submitted_at + timedelta(seconds=prediction.ratio(P_LOW) * seconds)
    end = job.submitted_at + timedelta(seconds=prediction.ratio(P_HIGH) * seconds + lag_target(job))
    return start, end


def render_schedule(job: Job) -> Schedule:
    return render_schedules([job])[job.pk]


def render_schedules(jobs: list[Job]) -> dict[int | None, Schedule]:
    """The schedule of each of `jobs` (by pk). A round of polls asks for
    dozens at once: the prediction (a blend can cost milliseconds) and
    whether the provider calls back are worked out once per provider, model
    and resolution, not once per job."""
    predictions: dict[tuple[str, str, str], tuple[Prediction, float, bool]] = {}
    out = {}
    for job in jobs:
        key = render_key(job)
        if key not in predictions:
            predictions[key] = (render_prediction(job), lag_target(job), calls_back(job))
        prediction, lag, webhooks = predictions[key]
        out[job.pk] = Schedule.for_job(
            prediction, seconds=job.input_seconds, lag=lag, webhooks=webhooks
        )
    return out


def calls_back(job: Job) -> bool:
    """Whether the provider was (or will be) given a webhook for this job."""
    return catalogue.provider_facts(job.provider).supports_webhooks and webhooks_enabled()


def finish_estimate(job: Job, *, seen_at: datetime, execution_seconds: float | None) -> datetime:
    """When the provider most likely finished: the middle of the span between
    its last "not done" answer (or the submission) and `seen_at`, narrowed by
    the execution time it reports (it cannot have finished sooner than
    submission + that)."""
    submitted = job.submitted_at or seen_at
    earliest = max(job.provider_pending_at or submitted, submitted)
    if execution_seconds:
        earliest = max(earliest, submitted + timedelta(seconds=execution_seconds))
    if earliest >= seen_at:
        return seen_at
    return earliest + (seen_at - earliest) / 2


_batch = threading.local()


@contextmanager
def render_times_batched() -> Iterator[None]:
    """Within it (in this thread), render_times_learn only notes the row a
    finished job teaches; on leaving, each noted row is rewritten once. A
    round of polls that sees 30 jobs of one provider, model and resolution
    finished learns once from all of them (the row is the same as after 30
    rewrites: each reads the latest jobs), not 30 times."""
    if getattr(_batch, "jobs", None) is not None:
        yield  # nested: the outer one learns
        return
    _batch.jobs = {}
    try:
        yield
    finally:
        noted, _batch.jobs = _batch.jobs, None
    # Not after a failure: polls_apply's transaction, the finished jobs with
    # it, is being rolled back.
    for job in noted.values():
        try:
            with transaction.atomic():  # a savepoint: a failure here rolls back only it
                _learn(job)
        except Exception:  # learning must never lose a finished job
            log.exception("job %s: could not learn its render time", job.pk)


def render_times_learn(job: Job) -> Prediction | None:
    """Rewrite the row of `job`'s provider, model and resolution from its
    latest finished jobs (`job` among them, its provider_seconds saved).
    None when nothing was learnt, or not yet (render_times_batched)."""
    noted = getattr(_batch, "jobs", None)
    if noted is not None:
        noted[render_key(job)] = job
        return None
    return _learn(job)


def _learn(job: Job) -> Prediction | None:
    provider, model, resolution = render_key(job)
    window = settings.POLL_LEARN_JOBS
    finished = Job.objects.filter(
        provider=provider,
        provider_model=model,
        resolution=resolution,
        provider_seconds__isnull=False,
    )
    learn_from = (
        RenderTimes.objects.filter(provider=provider, provider_model=model, resolution=resolution)
        .values_list("learn_from", flat=True)
        .first()
    )
    if learn_from is not None:
        finished = finished.filter(submitted_at__gte=learn_from)
    ratios = [
        seconds / max(billed, 1.0)
        for seconds, billed in finished.order_by("-submitted_at").values_list(
            "provider_seconds", "input_seconds"
        )[:window]
    ]
    if not ratios:
        return None
    learnt = learn(follow_shift(ratios), half_life=max(1.0, window / 4))
    after_seen = _after_seen(finished, window=window)
    RenderTimes.objects.update_or_create(
        provider=provider,
        provider_model=model,
        resolution=resolution,
        defaults={
            "samples": learnt.samples,
            "quantiles": list(learnt.quantiles),
            "after_seen": after_seen,
        },
    )
    with _memo_lock:
        if _memo["at"] is not None:
            row = Learnt(learnt, matched_lag(after_seen))
            _memo["rows"] = {**_memo["rows"], (provider, model, resolution): row}  # type: ignore[dict-item]
    return learnt


def _after_seen(finished, *, window: int) -> list[float]:
    """Seconds from a poll seeing each of the latest archived jobs done to its
    video archived, at OVERHEAD_PROBS; empty until MIN_JOBS were archived."""
    spans = [
        (archived - seen).total_seconds()
        for seen, archived in finished.filter(
            provider_completed_at__isnull=False, archived_at__isnull=False
        )
        .order_by("-submitted_at")
        .values_list("provider_completed_at", "archived_at")[:window]
    ]
    if len(spans) < MIN_JOBS:
        return []
    return [round(max(0.0, x), 3) for x in quantiles_at(spans, OVERHEAD_PROBS)]


def render_times_restart(
    provider: str, *, provider_model: str | None = None, resolution: str | None = None, why: str
) -> int:
    """Forget what was learnt of `provider` (one model and resolution, or all
    of them): predictions go back to the page's figures, and only jobs
    submitted from now on are learnt from. Returns the rows restarted.

    For when the jobs go somewhere else (the sandbox's speed says nothing of
    the real provider's) or staff know the provider changed; a gradual
    change needs none of this (schedule.SHIFT_JOBS)."""
    rows = RenderTimes.objects.filter(provider=provider)
    if provider_model is not None:
        rows = rows.filter(provider_model=provider_model)
    if resolution is not None:
        rows = rows.filter(resolution=resolution)
    restarted = rows.update(samples=0, quantiles=[], after_seen=[], learn_from=timezone.now())
    # This process at once; the others' memos within MEMO_SECONDS.
    render_times_forget()
    if restarted:
        log.info("render times of %s restarted (%d rows): %s", provider, restarted, why)
    return restarted


@contextmanager
def render_times_follow_moves(*providers: str) -> Iterator[None]:
    """Around a change to where providers' jobs go (an account added,
    enabled, disabled, deleted or pointed elsewhere): restart learning for
    each whose jobs go somewhere else afterwards. A new key alone is the
    same provider and keeps what was learnt."""
    before = {slug: provider_destination(slug) for slug in set(providers)}
    yield
    for slug, was in before.items():
        now = provider_destination(slug)
        if now != was:
            render_times_restart(slug, why=f"its jobs now go to {now}, not {was}")
