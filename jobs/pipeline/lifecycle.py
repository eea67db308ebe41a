"""The life of a job: create (and hold), submit once, poll, archive and settle;
cancel, try again, delete; and the reconciler that keeps nothing open forever.

    queued -> submitting -> processing -> archiving -> completed
    any of them -> failed

Every transition is a conditional UPDATE on the state the job is expected to
be in, so a task that runs twice, or two cluster nodes racing, move a job
once, and whoever moves it owns the credits that go with the move.
"""

import logging
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    Expression,
    F,
    Field,
    FloatField,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from jobs.credits.key_budget import key_admit
from jobs.credits.ledger import credits_capture, credits_hold, credits_release
from jobs.credits.pricing import Quote, quote, settle_amount
from jobs.files import media
from jobs.files.storage import files_delete_unused
from jobs.gallery.services import job_poster_make
from jobs.models import (
    ApiKey,
    DialogOrder,
    EntryKind,
    FailureCode,
    InputRole,
    Job,
    JobInput,
    JobMode,
    JobSource,
    JobState,
    LedgerEntry,
    Pool,
    Upload,
    media_facts,
)
from jobs.net.fetch import FetchError, UnsafeUrl, url_download
from jobs.providers import catalogue
from jobs.providers.accounts import ProviderKeyUnreadable
from jobs.providers.base import ProviderAdapter, SubmitRequest, TaskStatus
from jobs.providers.http import (
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRefused,
    ProviderRejected,
)
from jobs.providers.routing import adapter_for, endpoint_for
from jobs.studio.uploads import upload_copy

from .inputs import input_link
from .render_times import (
    finish_estimate,
    render_expected,
    render_schedule,
    render_schedules,
    render_times_batched,
    render_times_learn,
)
from .schedule import Schedule
from .selectors import job_made_already
from .webhooks import webhook_url, webhooks_enabled

log = logging.getLogger("jobs.pipeline.lifecycle")

# How long a claimed poll or archive owns its job before another may try.
POLL_LEASE = timedelta(seconds=60)
MAX_OUTPUT_BYTES = 2 * 1024**3
# A provider's output link may pass through a CDN or to signed storage; each hop
# is checked as a new address, never loopback (jobs.fetch), so following a few
# is as safe as the first and refusing them would lose paid-for videos.
OUTPUT_MAX_REDIRECTS = 3


class JobActionRefused(Exception):
    """A member's action that does not apply to the job as it is now."""


class StagedUploadsGone(JobActionRefused):
    """The staged uploads were taken by another job (a second click, another
    tab) or have expired between the form's check and the job's transaction.
    `earlier` is the job the same form already made, when there is one."""

    def __init__(self, *, earlier: "Job | None" = None):
        self.earlier = earlier
        if earlier is not None:
            message = (
                f"This form was already sent: it started job #{earlier.pk}, whose card "
                "is with your jobs. Nothing more was held."
            )
        else:
            message = (
                "These files have just been used for another job (a second click, or "
                "another tab?), so no job was made from them again and nothing was "
                "held. Check your jobs; to make another, choose the files again."
            )
        super().__init__(message)


class MadeAlready(JobActionRefused):
    """The member made a job of the same files and options lately (`earlier`),
    and did not confirm making it again: nothing was made or held."""

    def __init__(self, earlier: Job):
        self.earlier = earlier
        super().__init__(f"You made this already (job #{earlier.pk}).")


# --- Quoting and creating ---------------------------------------------------------


# A dialog sent with no order asked for plays both clips at once, as JoyPix
# renders every dialog, so the same files make the same video on either.
DIALOG_ORDER_DEFAULT = DialogOrder.MEANWHILE


def billed_seconds(*, mode: str, files: Mapping[str, Upload], dialog_order: str = "") -> float:
    """The duration that is billed, which is also the output's:

    - a dialog: the longer clip when the two speak at the same time (JoyPix,
      or lipsync.studio's "meanwhile"); both clips' lengths when they take turns;
    - a talking photo: its audio;
    - a video dub: its audio too. lipsync.studio trims a longer video to the
      audio and bills the audio's length; it extends a shorter video to the
      audio and bills the extended video's length, which is the audio's.
    """
    if mode == JobMode.DIALOG:
        left = files[InputRole.LEFT_AUDIO].duration
        right = files[InputRole.RIGHT_AUDIO].duration
        return left + right if dialog_order == DialogOrder.SEQUENTIAL else max(left, right)
    return files[InputRole.AUDIO].duration


def dialog_order_for(*, provider: str, mode: str, order: str = "") -> str:
    """The speaking order a job keeps: blank unless its provider takes one for
    a dialog; then the order asked for, or DIALOG_ORDER_DEFAULT. ValueError
    for an order that does not exist."""
    if mode != JobMode.DIALOG or not catalogue.takes_dialog_order(provider):
        return ""
    if order and order not in DialogOrder.values:
        raise ValueError(f"There is no dialog order {order!r}.")
    return order or DIALOG_ORDER_DEFAULT


def job_quote(*, provider: str, mode: str, resolution: str, seconds: float) -> Quote:
    model = catalogue.model_for(provider, mode)
    return quote(provider=provider, model=model, resolution=resolution, seconds=seconds)


def job_create(
    *,
    owner,
    mode: str,
    provider: str,
    resolution: str,
    files: dict[str, Upload],
    prompt: str = "",
    seed: int = -1,
    pool: str = Pool.STUDIO,
    retried_from: Job | None = None,
    dialog_order: str = "",
    form_token: str = "",
    source: str = JobSource.STUDIO,
    api_key: ApiKey | None = None,
    api_webhook: str = "",
    repeat_check: bool = False,
    repeat_of: int | None = None,
) -> Job:
    """Turn staged uploads into a job's inputs, hold the quoted credits and
    queue the job, in one transaction.

    Each staged upload is consumed by exactly one job: the transaction locks
    and deletes the staging rows first and goes on only if it got all of
    them, so concurrent posts of the same form make one job and one hold.

    With `repeat_check` (the Studio's form), a job repeating one the member
    made lately (selectors.job_made_already) raises MadeAlready unless
    `repeat_of` names that job: checked once the uploads are claimed, so
    concurrent posts of the same files lose the claim first.

    Raises StagedUploadsGone, MadeAlready, ledger.InsufficientCredits, pricing.NoRate or
    (for an API key's job) key_budget.KeyBudgetExceeded / KeyTooManyInFlight;
    then nothing is kept, and (but for the first) the uploads stay staged
    for the member to try again.
    """
    dialog_order = dialog_order_for(provider=provider, mode=mode, order=dialog_order)
    seconds = billed_seconds(mode=mode, files=files, dialog_order=dialog_order)
    q = job_quote(provider=provider, mode=mode, resolution=resolution, seconds=seconds)
    try:
        with transaction.atomic():
            _uploads_claim(owner=owner, files=files, form_token=form_token)
            if repeat_check:
                earlier = job_made_already(
                    owner=owner,
                    mode=mode,
                    provider=provider,
                    resolution=resolution,
                    prompt=prompt,
                    seed=seed,
                    dialog_order=dialog_order,
                    files=files,
                )
                if earlier is not None and earlier.pk != repeat_of:
                    raise MadeAlready(earlier)
            job = Job.objects.create(
                owner=owner,
                pool=pool,
                source=source,
                api_key=api_key,
                api_webhook=api_webhook,
                form_token=form_token,
                mode=mode,
                provider=provider,
                provider_model=catalogue.model_for(provider, mode),
                resolution=resolution,
                prompt=prompt,
                seed=seed,
                retried_from=retried_from,
                dialog_order=dialog_order,
                input_seconds=seconds,
                unit_seconds=q.unit_seconds,
                min_seconds=q.min_seconds,
                credits_per_unit=q.credits_per_unit,
                usd_per_unit=q.usd_per_unit,
                credits_held=q.credits,
                next_poll_at=timezone.now(),
            )
            for role, upload in files.items():
                JobInput.objects.create(
                    job=job,
                    role=role,
                    file=upload.file.name,
                    thumbnail=upload.thumbnail.name,
                    **media_facts(upload),
                )
            if api_key is not None:
                # The key's budget and jobs in flight, under the key's lock in
                # this transaction, so concurrent requests cannot both fit.
                key_admit(key=api_key, amount=q.credits, exclude_job_id=job.pk)
            credits_hold(
                user=owner,
                pool=pool,
                amount=q.credits,
                key=f"job:{job.pk}:hold",
                job=job,
                reason=f"Job #{job.pk}: {job.get_mode_display()}, {resolution}",
            )
            transaction.on_commit(lambda: enqueue("jobs.tasks.submit_job", job.pk))
    except IntegrityError:
        # The same form sent twice at once with other files: the token's
        # unique constraint let one through.
        earlier = Job.objects.filter(owner=owner, form_token=form_token).first()
        if form_token and earlier is not None:
            raise StagedUploadsGone(earlier=earlier) from None
        raise
    log.info(
        "job %s created: %s %s %s, %s credits held", job.pk, provider, mode, resolution, q.credits
    )
    return job


def _uploads_claim(*, owner: AbstractBaseUser, files: dict[str, Upload], form_token: str) -> None:
    """Lock the staged uploads, check they are all still there, and delete the
    staging rows (their files pass to the job). A transaction that finds one
    missing lost it to another job: it raises and holds nothing."""
    ids = {upload.pk for upload in files.values()}
    # The lock makes a concurrent claim wait for this transaction, then find
    # the rows gone (PostgreSQL); SQLite's IMMEDIATE transactions serialise.
    locked = set(
        Upload.objects.select_for_update()
        .filter(pk__in=ids, owner=owner)
        .values_list("pk", flat=True)
    )
    earlier = None
    if form_token:
        earlier = Job.objects.filter(owner=owner, form_token=form_token).first()
    if locked != ids or earlier is not None:
        raise StagedUploadsGone(earlier=earlier)
    deleted, _ = Upload.objects.filter(pk__in=ids, owner=owner).delete()
    if deleted != len(ids):  # cannot happen under the lock; never hold on a guess
        raise StagedUploadsGone()


# --- Submitting -----------------------------------------------------------------


def job_submit(job_id: int) -> None:
    """Send a queued job to its provider, at most once whenever the outcome is unknown."""
    now = timezone.now()
    claimed = (
        Job.objects.filter(pk=job_id, state=JobState.QUEUED)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .update(
            state=JobState.SUBMITTING,
            state_changed_at=now,
            updated_at=now,
            sent_at=now,
            next_poll_at=None,
            submit_attempts=F("submit_attempts") + 1,
        )
    )
    if not claimed:
        return  # sent already, cancelled, or not due: a duplicate task does nothing
    job = Job.objects.get(pk=job_id)
    try:
        request = _submit_request(job)
    except Exception:
        log.exception("job %s: could not prepare the submission", job.pk)
        job_fail(
            job,
            message="The studio could not prepare this job for the provider; it was not "
            "sent, and its credits were released.",
        )
        return
    try:
        endpoint = endpoint_for(job.provider)
    except ProviderKeyUnreadable as exc:
        log.error("job %s: %s", job.pk, exc)
        job_fail(
            job,
            message="The studio's account for this provider cannot be used (staff must re-enter "
            "its key); the job was not sent, and its credits were released.",
        )
        return
    adapter = adapter_for(endpoint)
    try:
        task_id = adapter.submit(request)
    except ProviderRefused as exc:
        _submit_refused(job, exc=exc)
        return
    except ProviderRejected as exc:
        job_fail(job, message=f"The provider refused this job: {exc}")
        return
    except ProviderOutcomeUnknown as exc:
        job_fail(job, message=f"{exc} Its credits were released.", code=FailureCode.OUTCOME_UNKNOWN)
        return
    except Exception:
        log.exception("job %s: unexpected error while submitting", job.pk)
        job_fail(
            job,
            message="Something went wrong while sending this job. It may have reached the "
            "provider, so it was not sent again; its credits were released.",
            code=FailureCode.OUTCOME_UNKNOWN,
        )
        return
    finally:
        adapter.close()

    now = timezone.now()
    # The first status request near the low end of the predicted finish.
    first_poll = now + timedelta(seconds=render_schedule(job).first)
    moved = Job.objects.filter(pk=job.pk, state=JobState.SUBMITTING).update(
        state=JobState.PROCESSING,
        provider_task_id=task_id,
        submitted_at=now,
        state_changed_at=now,
        updated_at=now,
        next_poll_at=first_poll,
        error="",
    )
    if not moved:
        log.warning("job %s: provider task %s created after the job was closed", job.pk, task_id)
        return
    log.info("job %s submitted to %s as %s", job.pk, job.provider, task_id)
    kick_poller()


def _submit_request(job: Job) -> SubmitRequest:
    links = {inp.role: input_link(inp) for inp in job.inputs.all()}
    return SubmitRequest(
        mode=job.mode,
        resolution=job.resolution,
        image_url=links.get(InputRole.IMAGE),
        audio_url=links.get(InputRole.AUDIO),
        left_audio_url=links.get(InputRole.LEFT_AUDIO),
        right_audio_url=links.get(InputRole.RIGHT_AUDIO),
        video_url=links.get(InputRole.VIDEO),
        mask_url=links.get(InputRole.MASK),
        dialog_order=job.dialog_order or None,
        prompt=job.prompt,
        seed=job.seed,
        webhook_url=_webhook_url(job),
    )


def _webhook_url(job: Job) -> str | None:
    supported = catalogue.provider_facts(job.provider).supports_webhooks
    return webhook_url(job) if supported and webhooks_enabled() else None


def _submit_refused(job: Job, *, exc: ProviderRefused) -> None:
    """The request certainly did not start a job: try again later, a few times."""
    attempts = job.submit_attempts
    if attempts >= settings.JOB_MAX_SUBMIT_ATTEMPTS:
        job_fail(
            job,
            message=f"The provider could not take this job after {attempts} tries ({exc}). "
            "It was never started, and its credits were released.",
        )
        return
    delay = backoff(attempts, retry_after=exc.retry_after)
    Job.objects.filter(pk=job.pk, state=JobState.SUBMITTING).update(
        state=JobState.QUEUED,
        state_changed_at=timezone.now(),
        updated_at=timezone.now(),
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        error=f"The provider did not take this job yet ({exc}); trying again in {round(delay)} s.",
    )
    log.info("job %s: submission refused (%s); retry in %.1f s", job.pk, exc, delay)
    kick_poller()


def backoff(attempt: int, *, retry_after: float | None = None, cap: float = 60.0) -> float:
    """Exponential with jitter, never sooner than the provider asked."""
    base = min(cap, 2.0 ** max(0, attempt - 1))
    delay = base * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


# --- Polling --------------------------------------------------------------------


def expected_render(*, provider: str, resolution: str, seconds: float, mode: str = "") -> timedelta:
    """How long `provider` is expected to take for `seconds` of video, before
    there is a job (the quote): the same learnt median as expected_processing."""
    return render_expected(
        Job(provider=provider, mode=mode, resolution=resolution, input_seconds=seconds)
    )


def expected_processing(job: Job) -> timedelta:
    """The expected time from submission to the provider's finish: the median
    of what the studio learnt of this provider, model and resolution (the
    provider page's figure until enough jobs finished; render_times.py). The
    quote, the cards' bars and ETA, "Stop waiting" and the reconciler all ask
    here (or expected_render, for a job not made yet)."""
    return render_expected(job)


# A member may stop waiting for a job once it is this far past its expected
# time at the provider; the reconciler gives up on its own at GIVE_UP_FACTOR.
STOP_WAITING_FACTOR = 1.5
GIVE_UP_FACTOR = 2


def stop_waiting_from(job: Job) -> datetime | None:
    """When the owner may stop waiting for a job at its provider; None when
    it is not at the provider (not processing)."""
    if job.state != JobState.PROCESSING or job.submitted_at is None:
        return None
    return job.submitted_at + STOP_WAITING_FACTOR * expected_processing(job)


def processing_give_up_after(job: Job) -> timedelta:
    """How long the reconciler waits for a provider before it fails the job:
    twice the expected time, at least JOB_PROCESSING_TIMEOUT_SECONDS. Twice
    covers a provider running at half its usual speed; its owner could stop
    waiting from 1.5 times on (4 times kept a 10-minute 720p clip's credits
    held for some 17 hours)."""
    floor = timedelta(seconds=settings.JOB_PROCESSING_TIMEOUT_SECONDS)
    return max(floor, GIVE_UP_FACTOR * expected_processing(job))


def polls_claim_due(*, limit: int) -> list[Job]:
    """Processing jobs whose next poll is due, each claimed by a short lease.

    One UPDATE claims them all (not one per job: with thousands due at once
    the loop's rate was set by those round trips); the jobs it moved are those
    it stamped with this claim's time, so one claimed meanwhile by another
    (a webhook's job_poll_now) is not taken twice."""
    now = timezone.now()
    candidates = list(
        Job.objects.filter(state=JobState.PROCESSING, next_poll_at__lte=now)
        .order_by("next_poll_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not candidates:
        return []
    lease_until = now + POLL_LEASE
    Job.objects.filter(pk__in=candidates, state=JobState.PROCESSING, next_poll_at__lte=now).update(
        next_poll_at=lease_until, poll_count=F("poll_count") + 1, last_polled_at=now
    )
    return list(
        Job.objects.filter(
            pk__in=candidates,
            state=JobState.PROCESSING,
            next_poll_at=lease_until,
            last_polled_at=now,
        )
    )


def job_status_fetch(job: Job, *, adapter: ProviderAdapter) -> TaskStatus | ProviderError:
    """Ask the provider; HTTP only, no database, so it can run in a thread."""
    try:
        return adapter.status(job.provider_task_id)
    except ProviderError as exc:
        return exc


def job_status_apply(
    job: Job, *, result: TaskStatus | ProviderError, archive_task: bool = True
) -> bool:
    """Act on the provider's answer. True when it moved the job to archiving;
    then, with `archive_task`, the archive_job task is queued on commit (the
    poll loop must not wait on a download); without, the caller archives."""
    now = timezone.now()
    if isinstance(result, ProviderError):
        delay = backoff(min(job.poll_count, 6), retry_after=getattr(result, "retry_after", None))
        if isinstance(result, ProviderRejected) and result.status == 404:
            if _task_not_found(job, now=now):
                return False
            # Spread the "not found" answers over the window they must span.
            polls = max(1, settings.JOB_NOT_FOUND_POLLS - 1)
            delay = max(delay, settings.JOB_NOT_FOUND_SECONDS / polls)
        log.info("job %s: poll failed (%s); next in %.1f s", job.pk, result, delay)
        _schedule_next_poll(job, at=now + timedelta(seconds=delay))
        return False
    if result.state not in ("completed", "failed"):
        polls_not_done([(job, result)], now=now)
        return False
    if job.not_found_count:
        Job.objects.filter(pk=job.pk).update(not_found_count=0, not_found_since=None)
    if result.state == "completed":
        with transaction.atomic():  # _completed_move locks the row it moves
            moved = _completed_move([(job, result)], now=now)
        if job.pk in moved and archive_task:
            transaction.on_commit(lambda: enqueue("jobs.tasks.archive_job", job.pk))
        if moved.get(job.pk) is not None:
            try:
                with transaction.atomic():  # a savepoint: a failure here rolls back only it
                    render_times_learn(job)
            except Exception:  # learning must never lose a finished job
                log.exception("job %s: could not learn its render time", job.pk)
        return job.pk in moved
    # Failed. (A completed job's move above records its first answer itself.)
    first = _first_answer(job, result=result, now=now)
    if first:
        Job.objects.filter(pk=job.pk).update(**first)
    job_fail(job, message=result.error or "The provider reported a failure without a reason.")
    return False


def _first_answer(job: Job, *, result: TaskStatus, now: datetime) -> dict[str, Coalesce]:
    """For the job's page: when the provider first answered, the seed it
    used; the fields to write ({} when the job, as claimed, has both)."""
    if job.first_status_at is not None and (result.seed is None or job.provider_seed is not None):
        return {}
    return {
        "first_status_at": Coalesce(F("first_status_at"), Value(now)),
        "provider_seed": Coalesce(
            F("provider_seed"), Value(result.seed, output_field=BigIntegerField())
        ),
    }


def polls_apply(answers: list[tuple[Job, TaskStatus | ProviderError]]) -> None:
    """Apply a round of status answers for jobs as claimed. Most say "not
    done": those are written together (polls_not_done), and so are those
    that say "completed" (polls_completed), so a round costs a fixed number
    of statements, not a few per job; the rest (failed, errors) one by one.
    The finished ones teach the render times once per provider, model and
    resolution at the end. All in one
    transaction: one commit per round, not one per statement. A finished,
    failed or erring job whose writes fail is rolled back alone (a savepoint)
    and asked again once its claim's lease ends; should the batch's own
    statements fail, the whole round is: no answer is lost, only repeated.)"""
    not_done, completed, others = [], [], []
    for job, result in answers:
        if not isinstance(result, TaskStatus) or result.state == "failed":
            others.append((job, result))
        elif result.state != "completed":
            not_done.append((job, result))
        elif job.not_found_count:  # rare: job_status_apply also ends its run of "not found"
            others.append((job, result))
        else:
            completed.append((job, result))
    with transaction.atomic():
        with render_times_batched():
            if not polls_completed(completed, now=timezone.now()):
                others += completed  # the batch failed: one by one, each in its savepoint
            for job, result in others:
                try:
                    with transaction.atomic():  # a savepoint: one job's failure is its own
                        job_status_apply(job, result=result)
                except Exception:
                    # Not the round's: the others are applied, and this job's
                    # claim lapses, so it is asked again after its lease.
                    log.exception("job %s: its status answer could not be applied", job.pk)
        polls_not_done(not_done, now=timezone.now())


def polls_completed(answers: list[tuple[Job, TaskStatus]], *, now: datetime) -> bool:
    """Move the jobs a round's answers say are completed to archiving, as
    job_status_apply does for one, but in a fixed number of statements (it
    spends 2-3 a job; with ~100 jobs finishing a second they were a third of
    the loop's CPU). Call within render_times_batched. False when the batch
    could not be written: it is rolled back alone (a savepoint), and the
    caller applies the answers one by one, so a bad one spoils only its job."""
    if not answers:
        return True
    try:
        with transaction.atomic():  # a savepoint
            moved = _completed_move(answers, now=now)
    except Exception:
        log.warning("%d finished jobs: written one by one", len(answers), exc_info=True)
        return False
    for job, _ in answers:
        if job.pk not in moved:
            continue
        transaction.on_commit(lambda pk=job.pk: enqueue("jobs.tasks.archive_job", pk))
        if moved[job.pk] is not None:
            try:
                render_times_learn(job)  # batched: noted, learnt once the round ends
            except Exception:  # learning must never lose a finished job
                log.exception("job %s: could not learn its render time", job.pk)
    return True


def _completed_move(
    answers: list[tuple[Job, TaskStatus]], *, now: datetime
) -> dict[int, float | None]:
    """Move the answered jobs still processing to archiving (one locking
    SELECT, one UPDATE: for one job from job_status_apply, for a round's from
    polls_completed); returns the provider seconds of each job it moved, by pk."""
    processing = Job.objects.filter(pk__in=[job.pk for job, _ in answers])
    processing = processing.filter(state=JobState.PROCESSING)
    # Locked (PostgreSQL; SQLite's write transaction already is), so the
    # UPDATE moves exactly the jobs read here.
    moving = set(processing.select_for_update().values_list("pk", flat=True))
    seconds, urls, expiry, seeds = {}, {}, {}, {}
    for job, result in answers:
        if result.seed is not None:
            seeds[job.pk] = result.seed
        if job.pk not in moving:
            continue
        finished = finish_estimate(job, seen_at=now, execution_seconds=_execution_seconds(result))
        submitted = job.submitted_at
        seconds[job.pk] = (finished - submitted).total_seconds() if submitted else None
        urls[job.pk] = result.video_url
        expiry[job.pk] = now + catalogue.provider_facts(job.provider).output_ttl
    first = {
        # For the job's page, as job_status_apply's _first_answer.
        "first_status_at": Coalesce(F("first_status_at"), Value(now)),
        "provider_seed": Coalesce(F("provider_seed"), ByPk(seeds, BigIntegerField())),
    }
    if moving:
        fields = Job._meta
        processing.filter(pk__in=moving).update(
            state=JobState.ARCHIVING,
            state_changed_at=now,
            updated_at=now,
            output_url=ByPk(urls, fields.get_field("output_url")),
            provider_completed_at=now,
            provider_expires_at=ByPk(expiry, DateTimeField()),
            provider_seconds=ByPk(seconds, FloatField()),
            next_poll_at=None,
            **first,
        )
    # A job no longer processing still records its first answer (as one by one).
    unmoved = [
        job.pk
        for job, result in answers
        if job.pk not in moving and _first_answer(job, result=result, now=now)
    ]
    if unmoved:
        Job.objects.filter(pk__in=unmoved).update(**first)
    return {pk: seconds[pk] for pk in moving}


def polls_not_done(answers: list[tuple[Job, TaskStatus]], *, now: datetime) -> None:
    """Record "not done" answers and set each job's next poll by its
    schedule, in one transaction whatever the number of jobs: one UPDATE for
    them all, plus two (the owners, the UPDATE) per provider state new to
    some of them. Only jobs still processing change; a webhook that made one
    due earlier meanwhile keeps its time."""
    if not answers:
        return
    schedules = render_schedules([job for job, _ in answers])
    next_at = {
        job.pk: now + next_poll_delay(job, now=now, schedule=schedules[job.pk])
        for job, _ in answers
    }
    seeds = {job.pk: r.seed for job, r in answers if r.seed is not None}
    with transaction.atomic(savepoint=False):  # within polls_apply's: no savepoint
        _provider_states_record(answers, now=now)
        Job.objects.filter(pk__in=list(next_at), state=JobState.PROCESSING).update(
            next_poll_at=_next_poll_case(answers, next_at),
            # For render_times' finish estimate: when it was last seen not done.
            provider_pending_at=now,
            # For the job's page: when the provider first answered, the seed it used.
            first_status_at=Coalesce(F("first_status_at"), Value(now)),
            provider_seed=Coalesce(F("provider_seed"), ByPk(seeds, BigIntegerField())),
            # An answer ends a run of "not found" (_task_not_found).
            not_found_count=0,
            not_found_since=None,
        )


def _provider_states_record(answers: list[tuple[Job, TaskStatus]], *, now: datetime) -> None:
    """ "pending" shows as waiting in the provider's line, not rendering: the
    card changes, so updated_at too (open pages ask by it, and the owners'
    card stamps are bumped). One UPDATE per new state, only for the jobs
    whose state changed: an answer that changes nothing on a card bumps none."""
    changed: dict[str, list[int]] = {}
    for job, result in answers:
        if result.state != job.provider_state:
            changed.setdefault(result.state, []).append(job.pk)
    for state, pks in changed.items():
        Job.objects.filter(pk__in=pks, state=JobState.PROCESSING).update(
            provider_state=state, updated_at=now
        )


def _next_poll_case(answers: list[tuple[Job, TaskStatus]], next_at: dict[int, datetime]) -> Case:
    """Each job's `next_at` if its next poll is still its claim's lease; else
    the earlier of the two (a webhook's job_poll_now or staff asked
    meanwhile). One condition per lease (a round's claim gives them all one)."""
    by_lease: dict[datetime | None, list[int]] = {}
    for job, _ in answers:
        by_lease.setdefault(job.next_poll_at, []).append(job.pk)
    at = ByPk(next_at, DateTimeField())
    return Case(
        *[When(pk__in=pks, next_poll_at=lease, then=at) for lease, pks in by_lease.items()],
        default=Least(F("next_poll_at"), at),
        output_field=DateTimeField(),
    )


class ByPk(Expression):
    """`CASE pk WHEN 1 THEN v1 WHEN 2 THEN v2 ... END`: a value per row of an
    UPDATE, NULL for rows not in `values`. Case(When(pk=...)) per job says
    the same, but Django resolves each When's Q as a filter: that was most of
    the poll loop's CPU for a round's "not done" answers (~0.5 ms a job)."""

    def __init__(self, values: Mapping[int, object], output_field: Field) -> None:
        super().__init__(output_field=output_field)
        self.values = dict(values)

    def as_sql(self, compiler, connection):
        if not self.values:
            return "NULL", []
        qn = compiler.quote_name
        meta = compiler.query.get_meta()
        column = f"{qn(meta.db_table)}.{qn(meta.pk.column)}"
        params: list[object] = []
        for pk, value in self.values.items():
            params += [pk, self.output_field.get_db_prep_value(value, connection)]
        sql = f"CASE {column}{' WHEN %s THEN %s' * len(self.values)} END"
        return connection.ops.unification_cast_sql(self.output_field) % sql, params


def _execution_seconds(result: TaskStatus) -> float | None:
    """The execution time a provider reports (lipsync.studio: executionTime, ms)."""
    ms = result.raw.get("executionTime") if isinstance(result.raw, dict) else None
    if isinstance(ms, int | float) and not isinstance(ms, bool) and ms > 0:
        return ms / 1000
    return None


def _task_not_found(job: Job, *, now: datetime) -> bool:
    """Count a "not found" answer; once there are JOB_NOT_FOUND_POLLS of them
    in a row over at least JOB_NOT_FOUND_SECONDS, the provider has forgotten
    the task: fail the job (releasing its hold) and say True. A provider
    answering 404 for a moment (a task not yet visible everywhere) does not."""
    Job.objects.filter(pk=job.pk, state=JobState.PROCESSING).update(
        not_found_count=F("not_found_count") + 1,
        not_found_since=Coalesce(F("not_found_since"), Value(now)),
    )
    counted = Job.objects.filter(pk=job.pk).values("not_found_count", "not_found_since").first()
    if counted is None or counted["not_found_since"] is None:
        return False
    count, since = counted["not_found_count"], counted["not_found_since"]
    window = timedelta(seconds=settings.JOB_NOT_FOUND_SECONDS)
    if count < settings.JOB_NOT_FOUND_POLLS or now - since < window:
        return False
    minutes = max(1, round((now - since).total_seconds() / 60))
    return job_fail(
        job,
        message=f"The provider no longer knows this job: it answered “not found” {count} times "
        f"over {minutes} min. The studio stopped waiting and released its credits; "
        "nothing was charged.",
    )


def _schedule_next_poll(job: Job, *, at: datetime, pending_at: datetime | None = None) -> None:
    """Set the next status request after one that `job` (as claimed) made.
    A webhook that asked for an earlier one meanwhile keeps its time.
    `pending_at`: the provider just said the job is not done (render_times)."""
    processing = Job.objects.filter(pk=job.pk, state=JobState.PROCESSING)
    also = {"provider_pending_at": pending_at} if pending_at else {}
    if not processing.filter(next_poll_at=job.next_poll_at).update(next_poll_at=at, **also):
        processing.update(next_poll_at=Least(F("next_poll_at"), Value(at)), **also)


def next_poll_delay(job: Job, *, now: datetime, schedule: Schedule | None = None) -> timedelta:
    """Until the next poll of the job's schedule (schedule.py): at most
    its lag target (render_times.lag_target) apart where the learnt distribution says it is
    likely to finish, growing past it. `schedule`: the job's, if known."""
    elapsed = (now - (job.submitted_at or now)).total_seconds()
    schedule = schedule or render_schedule(job)
    return timedelta(seconds=schedule.next_after(elapsed) - elapsed)


def job_poll_now(job_id: int) -> None:
    """Poll one job now if it is due (a webhook or staff made it so). A job
    another worker is polling, or that is not due, is left alone: a task
    delivered twice asks the provider once. When the provider says it is
    done, this worker archives it at once, after the commit."""
    began = time.monotonic()
    now = timezone.now()
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    if not Job.objects.filter(pk=job_id, state=JobState.PROCESSING, next_poll_at__lte=now).update(
        next_poll_at=now + POLL_LEASE, poll_count=F("poll_count") + 1, last_polled_at=now
    ):
        return
    job = Job.objects.get(pk=job_id)  # as claimed: its lease is its next_poll_at
    try:
        adapter = adapter_for(endpoint_for(job.provider))
    except ProviderKeyUnreadable as exc:
        log.error("job %s: not polled: %s", job.pk, exc)
        return  # it stays due; the reconciler ends it if the key is never fixed
    try:
        archiving = job_status_apply(
            job, result=job_status_fetch(job, adapter=adapter), archive_task=False
        )
    finally:
        adapter.close()
    if archiving:
        # Not a second task: that waits for the broker (up to Q_CLUSTER["poll"])
        # and a free worker, and a webhook's job is wanted on the page now. The
        # claim in job_archive keeps it to one archive; should this worker die,
        # the poll loop takes the job over (poller.ARCHIVE_HANDOFF).
        transaction.on_commit(lambda: job_archive(job_id, spent=time.monotonic() - began))


def job_make_due(job: Job) -> bool:
    """Staff's "poll now": the job's next status request is due at once."""
    return bool(
        Job.objects.filter(pk=job.pk, state=JobState.PROCESSING).update(next_poll_at=timezone.now())
    )


# --- Archiving and settling -----------------------------------------------------------


def job_archive(job_id: int, *, spent: float = 0.0) -> None:
    """Copy the provider's output into our storage, measure it, charge, complete.
    `spent`: seconds of the task's timeout its caller used already (a poll)."""
    now = timezone.now()
    claimed = (
        Job.objects.filter(pk=job_id, state=JobState.ARCHIVING)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .update(next_poll_at=now + archive_lease(), archive_attempts=F("archive_attempts") + 1)
    )
    if not claimed:
        return
    job = Job.objects.get(pk=job_id)
    lease = ArchiveLease(job)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "output.mp4"
        try:
            _download(
                job.output_url, path=path, progress=lease.renew, max_seconds=download_seconds(spent)
            )
        except ArchiveLeaseLost:
            log.warning("job %s: another worker took the archive over; this one stops", job.pk)
            return
        except UnsafeUrl as exc:
            # Asking again gets the same answer: fail now, not at the provider's expiry.
            log.warning(
                "job %s: the provider's output address (host %s) was refused: %s",
                job.pk,
                urlsplit(job.output_url).hostname,
                exc,
            )
            job_fail(
                job,
                message=f"The studio refused to download the provider's video: {exc} "
                "Nothing was charged, and the credits were released.",
            )
            return
        except (FetchError, requests.RequestException, OSError, ValueError) as exc:
            # FetchError's words never hold the URL; other errors' might.
            why = str(exc) if isinstance(exc, FetchError) else exc.__class__.__name__
            _archive_later(job, why=f"download failed: {why}")
            return
        try:
            lease.renew(force=True)  # probing and storing a long video take time too
            info = media.probe_output_video(path)
            lease.renew(force=True)
        except ArchiveLeaseLost:
            log.warning("job %s: another worker took the archive over; this one stops", job.pk)
            return
        except media.MediaError as exc:
            job_fail(
                job, message=f"The provider's video could not be read ({exc}). Nothing was charged."
            )
            return
        # Streamed from the file into storage (an object store gets it in
        # parts); the download is kept on disk until the poster is taken from it.
        with open(path, "rb") as fh:
            name = default_storage.save(f"outputs/{now:%Y/%m}/job-{job.pk}.mp4", File(fh))
        if _archive_complete(job, name=name, info=info):
            # The gallery's still; it logs and gives up on any error, never failing the archive.
            job_poster_make(job=Job.objects.get(pk=job.pk), video=path)


def _archive_complete(job: Job, *, name: str, info: media.VideoInfo) -> bool:
    """Settle an archived job whose output is stored as `name`: charge it and
    mark it completed. False (and the stored file deleted) if it left
    archiving meanwhile."""
    charge = settle_amount(job=job, output_seconds=info.duration)
    retention = settings.OUTPUT_RETENTION_DAYS
    # Stamped now, not when the download began: open pages ask for cards
    # changed since their last request, and a slow download must not hide this.
    done = timezone.now()
    try:
        with transaction.atomic():
            moved = Job.objects.filter(pk=job.pk, state=JobState.ARCHIVING).update(
                state=JobState.COMPLETED,
                state_changed_at=done,
                updated_at=done,
                output=name,
                output_seconds=info.duration,
                output_width=info.width,
                output_height=info.height,
                credits_charged=charge,
                archived_at=done,
                archive_expires_at=done + timedelta(days=retention) if retention else None,
                finished_at=done,
                next_poll_at=None,
                error="",
            )
            if not moved:
                raise JobActionRefused("job left archiving meanwhile")
            credits_capture(
                hold=hold_of(job),
                amount=charge,
                key=f"job:{job.pk}:capture",
                reason=f"Job #{job.pk}: {info.duration:.1f} s of video",
            )
            job_ended(job)
    except JobActionRefused:
        # Failed or refunded meanwhile (reconciler, staff): that decision stands.
        default_storage.delete(name)
        log.warning("job %s left archiving while its output was being stored", job.pk)
        return False
    except BaseException:
        default_storage.delete(name)
        raise
    log.info("job %s completed: %.2f s, %s credits charged", job.pk, info.duration, charge)
    return True


class ArchiveLeaseLost(Exception):
    """Another worker took this archive over (this one was thought dead)."""


def archive_lease() -> timedelta:
    return timedelta(seconds=settings.JOB_ARCHIVE_LEASE_SECONDS)


class ArchiveLease:
    """The claim of one archive attempt, kept short and renewed while the work
    progresses: a worker that dies mid-download gives the job up within one
    lease, while a long download of a live worker is never taken over."""

    def __init__(self, job: Job) -> None:
        self.job_id = job.pk
        self.attempt = job.archive_attempts
        self.every = archive_lease().total_seconds() / 4
        self.renewed = time.monotonic()

    def renew(self, _progress: int = 0, *, force: bool = False) -> None:
        if not force and time.monotonic() - self.renewed < self.every:
            return
        self.renewed = time.monotonic()
        mine = Job.objects.filter(
            pk=self.job_id, state=JobState.ARCHIVING, archive_attempts=self.attempt
        )
        if not mine.update(next_poll_at=timezone.now() + archive_lease()):
            raise ArchiveLeaseLost()


def _download(
    url: str,
    *,
    path: Path,
    progress: Callable[[int], None] | None = None,
    max_seconds: float | None = None,
) -> None:
    """The provider's output, through the SSRF guard (public addresses only)."""
    url_download(
        url,
        path,
        max_bytes=MAX_OUTPUT_BYTES,
        max_seconds=max_seconds or download_seconds(),
        max_redirects=OUTPUT_MAX_REDIRECTS,
        progress=progress,
    )


def download_seconds(spent: float = 0.0) -> float:
    """The archive task must probe, store and settle before the cluster's task
    timeout stops it: the download gets all but a minute of that timeout, less
    what the task `spent` before it (a webhook's poll that archives itself)."""
    return max(30.0, settings.Q_CLUSTER["timeout"] - 60.0 - spent)


def _archive_later(job: Job, *, why: str) -> None:
    now = timezone.now()
    if job.provider_expires_at and now >= job.provider_expires_at:
        job_fail(
            job,
            message="The provider deleted the video before the studio could archive it. "
            "Nothing was charged.",
        )
        return
    delay = backoff(job.archive_attempts, cap=300)
    log.warning(
        "job %s: archive attempt %s failed (%s); next in %.0f s",
        job.pk,
        job.archive_attempts,
        why,
        delay,
    )
    Job.objects.filter(pk=job.pk, state=JobState.ARCHIVING).update(
        next_poll_at=now + timedelta(seconds=delay)
    )


def hold_of(job: Job) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(job=job, kind=EntryKind.HOLD).first()


# --- Failing, and members' actions --------------------------------------------------


def job_fail(
    job: Job,
    *,
    message: str,
    code: str = "",
    from_states: Iterable[str] | None = None,
    stopped_by: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> bool:
    """Fail a live job (one in `from_states`, by default any live state) and
    release its hold. False if it had already left them: whoever moves the
    job releases the hold, so it is released once."""
    now = now or timezone.now()
    states = list(from_states) if from_states is not None else JobState.live()
    with transaction.atomic():
        moved = Job.objects.filter(pk=job.pk, state__in=states).update(
            state=JobState.FAILED,
            error=message[:2000],
            failure_code=code,
            stopped_by=stopped_by,
            finished_at=now,
            state_changed_at=now,
            updated_at=now,
            next_poll_at=None,
        )
        if moved:
            hold = hold_of(job)
            if hold is not None and not hold.resolutions.exists():
                credits_release(
                    hold=hold, key=f"job:{job.pk}:release", reason=f"Job #{job.pk} failed"
                )
            job_ended(job)
    if moved:
        log.info("job %s failed: %s", job.pk, message)
    return bool(moved)


def job_stop_waiting(job: Job, *, by: AbstractBaseUser) -> None:
    """The owner's "Stop waiting" for a job overdue at its provider: failed,
    its hold released, by one conditional UPDATE that races safely with a
    completion (the poller's move to archiving is conditional too, so one of
    them wins and the other changes nothing). A completion arriving later
    finds the job failed and is ignored: nothing is charged.

    Raises JobActionRefused when the job is not at the provider any more, or
    not yet overdue."""
    now = timezone.now()
    from_at = stop_waiting_from(job)
    if from_at is None:
        raise JobActionRefused(_not_waiting(job))
    if now < from_at:
        raise JobActionRefused(
            f"This job is not overdue yet: you can stop waiting from {from_at:%H:%M:%S} UTC."
        )
    label = catalogue.label_of(job.provider)
    waited = short_wait(now - job.submitted_at)
    who = getattr(by, "get_username", lambda: "its owner")()
    message = (
        f"Stopped waiting by {who} on {now:%-d %b %Y at %H:%M} UTC, after {waited} at {label}. "
        f"Its {job.credits_held:,} credits were released and nothing is charged. {label} may "
        "still finish this video; if it does, the studio ignores it and charges nothing."
    )
    if not job_fail(
        job,
        message=message,
        code=FailureCode.STOPPED_WAITING,
        from_states=[JobState.PROCESSING],
        stopped_by=by,
        now=now,
    ):
        raise JobActionRefused(_not_waiting(Job.objects.get(pk=job.pk)))
    log.info("job %s: %s stopped waiting after %s", job.pk, who, waited)


def _not_waiting(job: Job) -> str:
    if job.state == JobState.FAILED and job.failure_code == FailureCode.STOPPED_WAITING:
        return "You already stopped waiting for this job; its credits were released."
    if job.state in (JobState.ARCHIVING, JobState.COMPLETED):
        return "This job has just finished at the provider; its video is being kept."
    return "This job is not waiting at the provider."


def short_wait(elapsed: timedelta) -> str:
    """75 s -> "1 min", 5000 s -> "1 h 23 min"."""
    minutes = max(1, round(elapsed.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def job_ended(job: Job) -> None:
    """Inside the transaction that ends an API job: owe its caller the
    webhook, so the row commits with the end or not at all."""
    # jobs.api builds the contract's payload; imported here, not at the top,
    # because the API package imports this module. It reads the job afresh
    # (the caller's copy may be a stub or stale).
    from jobs.api.webhooks import webhook_delivery_create

    webhook_delivery_create(job)


def job_cancel(job: Job) -> None:
    """Cancel a job that has not been sent; its hold is released."""
    if job.state != JobState.QUEUED or not job_fail_if_queued(job):
        raise JobActionRefused(
            "This job has already been sent to the provider and cannot be cancelled."
        )


def job_fail_if_queued(job: Job) -> bool:
    now = timezone.now()
    with transaction.atomic():
        moved = Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
            state=JobState.FAILED,
            error="Cancelled before it was sent. Credits released.",
            finished_at=now,
            state_changed_at=now,
            updated_at=now,
            next_poll_at=None,
        )
        if moved:
            credits_release(
                hold=hold_of(job), key=f"job:{job.pk}:release", reason=f"Job #{job.pk} cancelled"
            )
            job_ended(job)
    return bool(moved)


def job_retry(job: Job) -> Job:
    """A new job with the same inputs and options, quoted and held anew.

    Raises JobActionRefused, or ledger.InsufficientCredits / pricing.NoRate;
    then nothing is kept, copies of the inputs included."""
    with transaction.atomic():
        # The lock makes "one retry per failed job" hold against a double click.
        job = Job.objects.select_for_update().get(pk=job.pk)
        # A finished job, failed or completed (the same again, say for another
        # take with a random seed); one retry each, so a double click makes one.
        if job.state not in JobState.terminal() or job.deleted_at:
            raise JobActionRefused("Only a finished job can be tried again.")
        earlier = job.retries.order_by("pk").first()
        if earlier is not None:
            raise JobActionRefused(f"This job was already tried again as job #{earlier.pk}.")
        files: dict[str, Upload] = {}
        try:
            for inp in job.inputs.all():
                if not inp.file or not default_storage.exists(inp.file.name):
                    raise JobActionRefused("This job's inputs are no longer kept; start a new job.")
                files[inp.role] = upload_copy(inp, owner=job.owner)
            # Its card changes too ("Tried again as #N"): open pages refresh it.
            Job.objects.filter(pk=job.pk).update(updated_at=timezone.now())
            return job_create(
                owner=job.owner,
                mode=job.mode,
                provider=job.provider,
                resolution=job.resolution,
                files=files,
                prompt=job.prompt,
                seed=job.seed,
                retried_from=job,
                dialog_order=job.dialog_order,
                pool=job.pool,  # an API job's retry spends API credits too
            )
        except BaseException:
            # The copies were made for this retry alone; their rows go with the
            # transaction, their files here.
            for copy in files.values():
                for name in (copy.file.name, copy.thumbnail.name):
                    if name:
                        default_storage.delete(name)
            raise


def job_delete(job: Job) -> None:
    """Remove a finished job's files and hide it; its ledger entries stay."""
    if job.is_live:
        raise JobActionRefused("A job can be deleted once it has finished.")
    if job.deleted_at:
        return
    names = _file_names(job)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(deleted_at=now, updated_at=now, output="", poster="")
    JobInput.objects.filter(job=job).update(file="", thumbnail="")
    transaction.on_commit(lambda: _delete_files(names))


def _file_names(job: Job) -> list[str]:
    names = [f.name for f in (job.output, job.poster) if f]
    for inp in job.inputs.all():
        names += [f.name for f in (inp.file, inp.thumbnail) if f]
    return names


def _delete_files(names: Iterable[str]) -> None:
    files_delete_unused(names)


# --- Reconciling ----------------------------------------------------------------------


def jobs_reconcile() -> dict[str, int]:
    """Move on or fail jobs stuck longer than they should be; none stays open forever."""
    now = timezone.now()
    counts = {"submitting": 0, "processing": 0, "archiving": 0}
    stuck_submitting = now - timedelta(seconds=settings.JOB_SUBMITTING_STUCK_SECONDS)
    for job in Job.objects.filter(state=JobState.SUBMITTING, state_changed_at__lt=stuck_submitting):
        if job_fail(
            job,
            message="The studio lost contact while sending this job, so it cannot know "
            "whether the provider received it. It was not sent again; its "
            "credits were released.",
            code=FailureCode.OUTCOME_UNKNOWN,
        ):
            counts["submitting"] += 1
    for job in Job.objects.filter(state=JobState.PROCESSING):
        limit = processing_give_up_after(job)
        if now - (job.submitted_at or job.state_changed_at) > limit:
            minutes = max(1, round(limit.total_seconds() / 60))
            if job_fail(
                job,
                message=f"The provider did not finish this job within {minutes} min. "
                "It was stopped and its credits were released.",
            ):
                counts["processing"] += 1
    for job in Job.objects.filter(state=JobState.ARCHIVING):
        if job.provider_expires_at and now >= job.provider_expires_at:
            if job_fail(
                job,
                message="The provider deleted the video before the studio could archive "
                "it. Nothing was charged.",
            ):
                counts["archiving"] += 1
        elif job.next_poll_at is None or job.next_poll_at <= now:
            enqueue("jobs.tasks.archive_job", job.pk)
    kick_poller()
    return counts


# --- Queueing ---------------------------------------------------------------------------


def enqueue(func: str, *args: object) -> None:
    from django_q.tasks import async_task

    async_task(func, *args, q_options={"group": func.rsplit(".", 1)[-1]})


def kick_poller() -> None:
    """Make sure a poll loop is running soon. In sync mode (tests) the loop
    would block the caller, so the tests drive it themselves."""
    if settings.Q_CLUSTER.get("sync"):
        return
    enqueue("jobs.tasks.poll_due")
