"""Jobs and ledger entries with known times, for the staff admin's tests.

A job here is a row with the ledger entries its life would have left (a
hold, then a capture or a release); no files, no provider.
"""

from datetime import datetime, time, timedelta

from django.utils import timezone

from jobs.credits.ledger import credits_capture, credits_grant, credits_hold, credits_release
from jobs.models import Job, JobState, LedgerEntry


def local(days_ago: int, hour: int = 12, minute: int = 0) -> datetime:
    """An aware moment `days_ago` local days before today, at hour:minute."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def at(entry: LedgerEntry, when: datetime) -> LedgerEntry:
    LedgerEntry.objects.filter(pk=entry.pk).update(created_at=when)
    entry.created_at = when
    return entry


def grant(user, amount: int, when: datetime, *, pool: str = "studio", key: str | None = None):
    key = key or f"grant:{user.pk}:{pool}:{when.isoformat()}:{amount}"
    return at(credits_grant(user=user, pool=pool, amount=amount, key=key), when)


def make_job(
    owner,
    *,
    provider: str = "joypix",
    state: str = JobState.QUEUED,
    created: datetime | None = None,
    held: int = 30,
    charged: int | None = None,
    pool: str = "studio",
    submitted_after: timedelta | None = None,
    provider_done_after: timedelta | None = None,
    finished_after: timedelta | None = None,
    submit_attempts: int | None = None,
    task_id: str = "",
) -> Job:
    """A job in `state` with its ledger: held, then captured (completed) or
    released (failed). Times are offsets from `created`."""
    created = created or timezone.now()
    model = "motion-2-dialog" if provider == "joypix" else "lipsync-image-multi"
    sent = state not in (JobState.QUEUED,)
    job = Job.objects.create(
        owner=owner,
        mode="dialog",
        provider=provider,
        provider_model=model,
        resolution="480p",
        state=state,
        input_seconds=7.0,
        unit_seconds=5,
        credits_per_unit=15,
        credits_held=held,
        provider_task_id=task_id or (f"task-{owner.pk}-{created.timestamp()}" if sent else ""),
        submit_attempts=(1 if sent else 0) if submit_attempts is None else submit_attempts,
        # As the pipeline leaves it (the database checks): an ended job has
        # finished_at, an archiving one its output's address.
        finished_at=created + (finished_after or timedelta())
        if state in JobState.terminal()
        else None,
        output_url="https://cdn.example/out.mp4" if state == JobState.ARCHIVING else "",
    )
    hold = at(
        credits_hold(user=owner, pool=pool, amount=held, key=f"job:{job.pk}:hold", job=job),
        created,
    )
    fields = {"created_at": created, "state_changed_at": created}
    if submitted_after is not None:
        fields["submitted_at"] = created + submitted_after
    if provider_done_after is not None:
        fields["provider_completed_at"] = created + provider_done_after
    if finished_after is not None:
        finished = created + finished_after
        fields["finished_at"] = finished
        if state == JobState.COMPLETED:
            fields["credits_charged"] = held if charged is None else charged
            capture = credits_capture(
                hold=hold, amount=fields["credits_charged"], key=f"job:{job.pk}:capture"
            )
            at(capture, finished)
        elif state == JobState.FAILED:
            at(credits_release(hold=hold, key=f"job:{job.pk}:release"), finished)
    Job.objects.filter(pk=job.pk).update(**fields)
    return Job.objects.get(pk=job.pk)
