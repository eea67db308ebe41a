"""What staff may do to a job from the admin: poll now, fail with a reason,
refund. None of them ever sends a job to a provider again.

Each service records the staff member twice, as the ledger does for credit
changes: `created_by` on any ledger entry it posts, and an admin LogEntry
(history) on the job. Refusals raise StaffActionRefused with a message that
is safe to show.

- Fail with reason: a live job (queued … archiving) becomes failed and its
  hold is released, the release carrying the reason. The same conditional
  UPDATE as lifecycle.job_fail and the same release key, so a staff decision
  and the pipeline (or the reconciler) racing for a job move it once.
- Refund: a live job is failed as above. A completed job gets an `adjust`
  entry of +its capture back into the pool it was paid from, under the key
  `job:<pk>:refund`, so a second refund is refused (and the database's
  unique key stops a racing one). A failed job was never charged: nothing to
  refund, unless its hold was somehow left open, which is then released.
- Poll now: asks the provider about a processing job through the same task
  the webhooks use; any other state is left alone.
"""

from dataclasses import dataclass

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from jobs.credits.ledger import credits_adjust, credits_release
from jobs.models import EntryKind, Job, JobState, LedgerEntry, Pool
from jobs.pipeline.lifecycle import enqueue, hold_of, job_ended, job_make_due

REASON_MAX_LENGTH = 400


class StaffActionRefused(Exception):
    """The action does not apply to the job as it is now; the message says why."""


@dataclass(frozen=True)
class StaffActionResult:
    job: Job
    message: str  # what happened, for the admin's message list
    entry: LedgerEntry | None = None  # the release or refund posted, if any


def job_refund_key(job: Job) -> str:
    return f"job:{job.pk}:refund"


def job_release_key(job: Job) -> str:
    # The pipeline's own key: whoever releases first, it happens once.
    return f"job:{job.pk}:release"


# --- Services ------------------------------------------------------------------------


def job_fail_by_staff(*, job: Job, by: AbstractBaseUser, reason: str) -> StaffActionResult:
    """Fail a live job with the reason staff gave, releasing its hold."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        job = _locked(job)
        if job.state not in JobState.live():
            raise StaffActionRefused(
                f"Job #{job.pk} has already ended ({job.get_state_display().lower()}); "
                "only a live job can be failed."
            )
        return _fail_live(job, by=by, reason=reason, verb="Failed")


def job_refund(*, job: Job, by: AbstractBaseUser, reason: str) -> StaffActionResult:
    """Give a job's credits back: release a live job's hold, or refund a
    completed job's charge. Refused when there is nothing (more) to refund."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        job = _locked(job)
        if job.state in JobState.live():
            return _fail_live(job, by=by, reason=reason, verb="Refunded")
        if job.state == JobState.FAILED:
            return _refund_failed(job, by=by, reason=reason)
        return _refund_completed(job, by=by, reason=reason)


def job_poll_by_staff(*, job: Job, by: AbstractBaseUser) -> bool:
    """Ask the provider about a processing job now. False (and nothing done)
    for a job in any other state: polling never submits anything."""
    if not job_make_due(job):
        return False
    _log(job, by, "Poll now: asked the provider for the job's status.")
    enqueue("jobs.tasks.poll_job", job.pk)
    return True


# --- Reads for the admin's confirmation page --------------------------------------------


def job_refund_preview(job: Job, *, entries: list[LedgerEntry]) -> str:
    """What a refund of `job` would do, from its ledger entries (prefetched)."""
    by_kind: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    if any(e.idempotency_key == job_refund_key(job) for e in entries):
        return "Nothing: it was refunded already."
    holds = by_kind.get(EntryKind.HOLD, [])
    resolved = {e.hold_id for e in entries if e.is_resolution}
    open_hold = next((h for h in holds if h.pk not in resolved), None)
    if job.state in JobState.live():
        if open_hold is None:
            return "Fail it (it has no open hold to release)."
        return f"Fail it and release its hold of {open_hold.amount:,} credits."
    if job.state == JobState.FAILED:
        if open_hold is not None:
            return f"Release its forgotten hold of {open_hold.amount:,} credits."
        return "Nothing: a failed job was never charged."
    capture = next(iter(by_kind.get(EntryKind.CAPTURE, [])), None)
    if capture is None or capture.amount <= 0:
        return "Nothing: nothing was charged."
    return f"Give back the {capture.amount:,} credits charged."


def job_fail_preview(job: Job, *, entries: list[LedgerEntry]) -> str:
    """What failing `job` would do, from its ledger entries (prefetched)."""
    if job.state not in JobState.live():
        return f"Nothing: it has already ended ({job.get_state_display().lower()})."
    resolved = {e.hold_id for e in entries if e.is_resolution}
    hold = next((e for e in entries if e.kind == EntryKind.HOLD and e.pk not in resolved), None)
    if hold is None:
        return "Fail it (it has no open hold to release)."
    return f"Fail it and release its hold of {hold.amount:,} credits."


# --- Internals -------------------------------------------------------------------------


def _clean_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise StaffActionRefused("Say why: the reason goes on the ledger and the job.")
    return reason[:REASON_MAX_LENGTH]


def _sentence(text: str) -> str:
    return text if text[-1:] in ".!?" else f"{text}."


def _locked(job: Job) -> Job:
    # One staff action per job at a time; the pipeline's conditional
    # updates wait for this lock and then see the new state.
    return Job.objects.select_for_update().get(pk=job.pk)


def _fail_live(job: Job, *, by: AbstractBaseUser, reason: str, verb: str) -> StaffActionResult:
    now = timezone.now()
    moved = Job.objects.filter(pk=job.pk, state__in=JobState.live()).update(
        state=JobState.FAILED,
        error=f"Stopped by the studio's staff: {_sentence(reason)} Its credits were released.",
        finished_at=now,
        state_changed_at=now,
        updated_at=now,
        next_poll_at=None,
    )
    if not moved:  # pragma: no cover - the row lock makes this unreachable
        raise StaffActionRefused(f"Job #{job.pk} ended meanwhile.")
    job_ended(job)  # an API caller's webhook hears of it
    entry = _release_open_hold(
        job, by=by, reason=f"Job #{job.pk} {verb.lower()} by staff: {reason}"
    )
    released = f", releasing {entry.amount:,} held credits" if entry else ""
    _log(job, by, f"{verb} by staff (was {job.get_state_display().lower()}){released}: {reason}")
    return StaffActionResult(job=job, message=f"failed{released}", entry=entry)


def _release_open_hold(job: Job, *, by: AbstractBaseUser, reason: str) -> LedgerEntry | None:
    hold = hold_of(job)
    if hold is None or hold.resolutions.exists():
        return None
    return credits_release(hold=hold, key=job_release_key(job), reason=reason, by=by)


def _refund_failed(job: Job, *, by: AbstractBaseUser, reason: str) -> StaffActionResult:
    entry = _release_open_hold(job, by=by, reason=f"Job #{job.pk} refunded by staff: {reason}")
    if entry is None:
        raise StaffActionRefused(f"Job #{job.pk} failed and was never charged: nothing to refund.")
    _log(job, by, f"Refunded by staff: released a hold left open ({entry.amount:,}): {reason}")
    return StaffActionResult(
        job=job, message=f"released a hold of {entry.amount:,} credits", entry=entry
    )


def _refund_completed(job: Job, *, by: AbstractBaseUser, reason: str) -> StaffActionResult:
    earlier = LedgerEntry.objects.filter(idempotency_key=job_refund_key(job)).first()
    if earlier is not None:
        raise StaffActionRefused(
            f"Job #{job.pk} was already refunded on {earlier.created_at:%Y-%m-%d %H:%M} "
            f"(ledger entry #{earlier.pk})."
        )
    # The ledger, not the job's copy, says what was charged and from which pool.
    capture = (
        LedgerEntry.objects.filter(job=job, kind=EntryKind.CAPTURE)
        .select_related("account")
        .first()
    )
    if capture is None or capture.amount <= 0:
        raise StaffActionRefused(f"Job #{job.pk} was not charged: nothing to refund.")
    entry = credits_adjust(
        user=job.owner,
        pool=capture.account.pool,
        amount=capture.amount,
        key=job_refund_key(job),
        reason=f"Refund of job #{job.pk}: {reason}",
        by=by,
        job=job,
    )
    pool = Pool(capture.account.pool).label
    _log(job, by, f"Refunded {entry.amount:,} {pool} credits (ledger entry #{entry.pk}): {reason}")
    return StaffActionResult(
        job=job, message=f"refunded {entry.amount:,} {pool} credits", entry=entry
    )


def _log(job: Job, by: AbstractBaseUser, message: str) -> None:
    LogEntry.objects.log_actions(by.pk, [job], CHANGE, change_message=message, single_object=True)
