"""Retention deletes exactly the files whose time has come: inputs some days
after a job ends, outputs at their archive expiry; rows, posters and ledger
entries stay, and the card says what expired."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobInput, LedgerEntry
from jobs.pipeline import lifecycle
from jobs.pipeline.retention import retention_purge
from jobs.tasks import purge_expired

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INPUT_RETENTION_DAYS = 30
    return settings.MEDIA_ROOT


def stored(name: str) -> str:
    return default_storage.save(name, ContentFile(b"x" * 64))


def make_job(owner, *, ended_days_ago: float | None, state="completed", output_expires=None):
    now = timezone.now()
    job = Job.objects.create(
        owner=owner,
        mode="dialog",
        provider="joypix",
        provider_model="motion-2-dialog",
        resolution="480p",
        state=state,
        provider_task_id="task-1",
        finished_at=None if ended_days_ago is None else now - timedelta(days=ended_days_ago),
        output=stored("outputs/out.mp4") if state == "completed" else "",
        poster=stored("posters/p.webp") if state == "completed" else "",
        archive_expires_at=output_expires,
    )
    for role in ("image", "left_audio", "right_audio"):
        JobInput.objects.create(
            job=job,
            role=role,
            file=stored(f"uploads/{role}.bin"),
            thumbnail=stored("thumbs/t.webp") if role == "image" else "",
            original_name=role,
            content_type="application/octet-stream",
            size=64,
        )
    return job


def files_of(job: Job) -> list[str]:
    job.refresh_from_db()
    names = [f.name for f in (job.output, job.poster) if f]
    for inp in job.inputs.all():
        names += [f.name for f in (inp.file, inp.thumbnail) if f]
    return names


def exists(names) -> list[bool]:
    return [default_storage.exists(n) for n in names]


def test_inputs_go_thirty_days_after_the_job_ends_and_nothing_else(
    alice, media_root, django_capture_on_commit_callbacks
):
    old = make_job(alice, ended_days_ago=31)
    recent = make_job(alice, ended_days_ago=29)
    live = make_job(alice, ended_days_ago=None, state="processing")
    old_inputs = [n for n in files_of(old) if n.startswith(("uploads/", "thumbs/"))]
    kept = files_of(recent) + files_of(live) + [old.output.name, old.poster.name]

    with django_capture_on_commit_callbacks(execute=True):
        counts = retention_purge()

    assert counts == {"inputs": 1, "outputs": 0, "files": 4}
    assert exists(old_inputs) == [False] * 4
    assert all(exists(kept))
    old.refresh_from_db()
    assert old.inputs_purged_at is not None
    assert old.output and old.state == "completed"  # the video is kept (outputs: forever)
    assert Job.objects.count() == 3


def test_an_output_goes_at_its_archive_expiry_and_its_poster_stays(
    alice, media_root, django_capture_on_commit_callbacks
):
    expired = make_job(alice, ended_days_ago=2, output_expires=timezone.now() - timedelta(hours=1))
    not_yet = make_job(alice, ended_days_ago=2, output_expires=timezone.now() + timedelta(days=1))
    output = expired.output.name

    with django_capture_on_commit_callbacks(execute=True):
        counts = purge_expired()

    assert counts["outputs"] == 1 and counts["inputs"] == 0
    assert not default_storage.exists(output)
    assert default_storage.exists(expired.poster.name)
    assert all(exists(files_of(not_yet)))
    expired.refresh_from_db()
    assert expired.output_purged_at is not None and not expired.output


def test_a_second_run_finds_nothing_and_ledger_entries_stay(
    alice, media_root, django_capture_on_commit_callbacks
):
    credits_grant(user=alice, pool="studio", amount=50, key="g")
    job = make_job(alice, ended_days_ago=40, output_expires=timezone.now() - timedelta(days=1))
    entries = LedgerEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        retention_purge()
        assert retention_purge() == {"inputs": 0, "outputs": 0, "files": 0}

    assert LedgerEntry.objects.count() == entries
    assert Job.objects.filter(pk=job.pk).exists()


def test_zero_days_keeps_inputs_for_good(alice, media_root, settings):
    settings.INPUT_RETENTION_DAYS = 0
    job = make_job(alice, ended_days_ago=400)

    assert retention_purge()["inputs"] == 0
    assert all(exists(files_of(job)))


def test_the_card_counts_down_and_then_says_what_expired(
    client, alice, media_root, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    job = make_job(alice, ended_days_ago=29, output_expires=timezone.now() + timedelta(days=5))

    html = client.get(reverse("studio")).content.decode()
    assert "Inputs deleted in" in html and "Video deleted in" in html

    with django_capture_on_commit_callbacks(execute=True):
        retention_purge(now=timezone.now() + timedelta(days=6))

    html = client.get(reverse("studio")).content.decode()
    assert "Video expired on" in html and "Inputs removed on" in html
    assert f'src="/jobs/{job.pk}/video.mp4"' not in html
    assert "Inputs deleted in" not in html


def test_a_failed_job_whose_inputs_expired_cannot_be_tried_again(
    alice, media_root, django_capture_on_commit_callbacks
):
    job = make_job(alice, ended_days_ago=31, state="failed")
    with django_capture_on_commit_callbacks(execute=True):
        retention_purge()

    with pytest.raises(lifecycle.JobActionRefused, match="no longer kept"):
        lifecycle.job_retry(Job.objects.get(pk=job.pk))
    assert Path(media_root).exists()


def test_an_open_studio_page_is_sent_the_expired_card(
    client, alice, media_root, django_capture_on_commit_callbacks
):
    """The page asks for cards changed since its last request: a purge must
    count as a change, or the card keeps its countdown and a dead video."""
    client.force_login(alice)
    job = make_job(alice, ended_days_ago=29, output_expires=timezone.now() + timedelta(days=5))
    # The page last asked a minute after the job's last change.
    since = int((timezone.now() + timedelta(minutes=1)).timestamp() * 1000)

    later = timezone.now() + timedelta(days=6)
    with django_capture_on_commit_callbacks(execute=True):
        retention_purge(now=later)

    update = client.get(reverse("studio_cards"), {"since": since}).content.decode()
    assert f'id="job-{job.pk}"' in update
    assert "Video expired on" in update and "Inputs removed on" in update
