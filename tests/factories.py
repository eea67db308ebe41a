"""Rows the tests need, made one way: jobs (bare, with their ledger, with
stored files, or through job_create on real staged media), staged uploads
and ledger entries at a known moment.

Imports the app's models and services only; fixtures live in tests/conftest.py.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from jobs.credits.ledger import credits_capture, credits_hold, credits_release
from jobs.models import Job, JobInput, JobState, LedgerEntry, Upload
from jobs.pipeline import lifecycle
from jobs.studio.uploads import upload_stage

DIALOG_ROLES = ("image", "left_audio", "right_audio")
MODELS = {
    ("joypix", "dialog"): "motion-2-dialog",
    ("lipsync_studio", "dialog"): "lipsync-image-multi",
    ("lipsync_studio", "talking_photo"): "lipsync-image",
    ("lipsync_studio", "video_dub"): "lipsync-video",
}


def at(entry: LedgerEntry, when: datetime) -> LedgerEntry:
    """The entry, moved to `when` (the ledger stamps entries with now)."""
    LedgerEntry.objects.filter(pk=entry.pk).update(created_at=when)
    entry.created_at = when
    return entry


def stored(name: str, size: int = 64) -> str:
    """A file of `size` bytes saved to the media storage; its stored name."""
    return default_storage.save(name, ContentFile(b"x" * size))


def make_uploads(owner, durations: Mapping[str, tuple[str, float | None]]) -> dict[str, Upload]:
    """Staged uploads as the form leaves them, role -> (kind, seconds), with no
    file behind them: for quotes and holds, where nothing is sent."""
    return {
        role: Upload.objects.create(
            owner=owner,
            kind=kind,
            file=f"uploads/{role}",
            original_name=role,
            content_type="application/octet-stream",
            size=1,
            duration=seconds,
        )
        for role, (kind, seconds) in durations.items()
    }


def make_job(
    owner,
    *,
    mode: str = "dialog",
    provider: str = "joypix",
    state: str = JobState.QUEUED,
    created: datetime | None = None,
    held: int | None = 30,
    charged: int | None = None,
    pool: str = "studio",
    submitted_after: timedelta | None = None,
    provider_done_after: timedelta | None = None,
    finished_after: timedelta | None = None,
    submit_attempts: int | None = None,
    task_id: str = "",
    files: bool = False,
    inputs: Mapping[str, tuple[str, Path]] | None = None,
    **fields,
) -> Job:
    """A job (a JoyPix dialog unless told) in `state`, as its life so far would have left it.

    - `held`: the credits held for it, with its ledger (a hold, then a capture
      when completed or a release when failed, at `finished_after`); None: no
      ledger entries at all. Times are offsets from `created` (default now).
    - `files`: stored (placeholder) dialog inputs, and output and poster once
      completed, for tests of what happens to files.
    - `inputs`: role -> (kind, path) of real media: the job is then made by
      job_create from those files staged as the Studio form stages them (its
      quote, its hold), and only `state` and `fields` are set on it after.
    - `fields`: any other Job field, stored as given (e.g. finished_at).
    """
    if inputs is not None:
        return _job_through_the_form(owner, inputs, state=state, **fields)
    created = created or timezone.now()
    sent = state != JobState.QUEUED
    completed_with_files = files and state == JobState.COMPLETED
    job = Job.objects.create(
        owner=owner,
        mode=mode,
        provider=provider,
        provider_model=MODELS[provider, mode],
        resolution="480p",
        state=state,
        input_seconds=7.0,
        unit_seconds=5,
        credits_per_unit=15,
        credits_held=held or 0,
        provider_task_id=task_id or (f"task-{owner.pk}-{created.timestamp()}" if sent else ""),
        submit_attempts=(1 if sent else 0) if submit_attempts is None else submit_attempts,
        output=stored("outputs/out.mp4") if completed_with_files else "",
        poster=stored("posters/p.webp") if completed_with_files else "",
        **_as_left(
            state, finished_at=fields.get("finished_at", created + (finished_after or timedelta()))
        ),
    )
    if files:
        for role in DIALOG_ROLES:
            JobInput.objects.create(
                job=job,
                role=role,
                file=stored(f"uploads/{role}.bin"),
                thumbnail=stored("thumbs/t.webp") if role == "image" else "",
                original_name=role,
                content_type="application/octet-stream",
                size=64,
            )
    hold = None
    if held is not None:
        hold = credits_hold(user=owner, pool=pool, amount=held, key=f"job:{job.pk}:hold", job=job)
        at(hold, created)
    dated = {"created_at": created, "state_changed_at": created}
    if submitted_after is not None:
        dated["submitted_at"] = created + submitted_after
    if provider_done_after is not None:
        dated["provider_completed_at"] = created + provider_done_after
    if finished_after is not None:
        finished = created + finished_after
        dated["finished_at"] = finished
        if hold is not None and state == JobState.COMPLETED:
            dated["credits_charged"] = held if charged is None else charged
            capture = credits_capture(
                hold=hold, amount=dated["credits_charged"], key=f"job:{job.pk}:capture"
            )
            at(capture, finished)
        elif hold is not None and state == JobState.FAILED:
            at(credits_release(hold=hold, key=f"job:{job.pk}:release"), finished)
    Job.objects.filter(pk=job.pk).update(**dated, **fields)
    return Job.objects.get(pk=job.pk)


def _job_through_the_form(owner, inputs, *, state: str, **fields) -> Job:
    staged = {
        role: upload_stage(
            owner=owner, kind=kind, uploaded=SimpleUploadedFile(path.name, path.read_bytes())
        )
        for role, (kind, path) in inputs.items()
    }
    job = lifecycle.job_create(
        owner=owner, mode="dialog", provider="joypix", resolution="480p", files=staged
    )
    as_left = _as_left(state, finished_at=timezone.now()) | {
        "provider_task_id": "" if state == JobState.QUEUED else "task-1"
    }
    Job.objects.filter(pk=job.pk).update(state=state, **(as_left | fields))
    return Job.objects.get(pk=job.pk)


def _as_left(state: str, *, finished_at: datetime | None) -> dict:
    """The fields the database requires of a job in `state` (migration 0013):
    an ended job has finished_at, an archiving one its output's address."""
    return {
        "finished_at": finished_at if state in JobState.terminal() else None,
        "output_url": "https://cdn.example/out.mp4" if state == JobState.ARCHIVING else "",
    }
