"""The django-q2 entry points (jobs/tasks.py) as the cluster's schedules run
them: the reconcile task's composition, the stale staged-upload purge it
runs, and the names the schedules store."""

import importlib
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from jobs import tasks
from jobs.credits.ledger import credits_balances, credits_grant, credits_hold
from jobs.models import Job, JobInput, JobState, Upload
from jobs.studio.uploads import STAGED_FOR, uploads_purge_stale

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def staged(owner, *, age: timedelta) -> Upload:
    """An upload staged `age` ago, its file and thumbnail in storage."""
    thumb = default_storage.save("thumbs/face.webp", ContentFile(b"webp"))
    upload = Upload.objects.create(
        owner=owner,
        kind="image",
        file=default_storage.save("uploads/face.jpg", ContentFile(b"jpeg" * 16)),
        thumbnail=thumb,
        original_name="face.jpg",
        content_type="image/jpeg",
        size=64,
        width=8,
        height=8,
    )
    Upload.objects.filter(pk=upload.pk).update(created_at=timezone.now() - age)
    return upload


def stored(upload: Upload) -> bool:
    return all(default_storage.exists(f.name) for f in (upload.file, upload.thumbnail) if f)


# --- uploads_purge_stale ---------------------------------------------------------------


def test_a_staged_upload_no_job_took_within_a_day_goes_with_its_files(alice):
    stale = staged(alice, age=STAGED_FOR + timedelta(minutes=1))
    fresh = staged(alice, age=STAGED_FOR - timedelta(minutes=1))

    assert uploads_purge_stale() == 1

    assert list(Upload.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not default_storage.exists(stale.file.name)
    assert not default_storage.exists(stale.thumbnail.name)
    assert stored(fresh)
    assert uploads_purge_stale() == 0  # nothing more to do


def test_a_stale_upload_whose_file_a_job_uses_keeps_the_file(alice):
    stale = staged(alice, age=timedelta(days=3))
    job = Job.objects.create(
        owner=alice, mode="dialog", provider="joypix", provider_model="m", resolution="480p"
    )
    JobInput.objects.create(
        job=job, role="image", file=stale.file.name, thumbnail=stale.thumbnail.name, size=64
    )

    assert uploads_purge_stale() == 1

    assert not Upload.objects.exists()
    assert stored(stale)  # the row went; the job's files stayed


# --- the reconcile task -------------------------------------------------------------------


def stuck_submitting(owner) -> Job:
    """A job whose worker died mid-submission, long enough ago to be given up."""
    job = Job.objects.create(
        owner=owner,
        mode="dialog",
        provider="joypix",
        provider_model="motion-2-dialog",
        resolution="480p",
        state=JobState.SUBMITTING,
        credits_per_unit=15,
        credits_held=15,
    )
    credits_hold(user=owner, pool="studio", amount=15, key=f"job:{job.pk}:hold", job=job)
    Job.objects.filter(pk=job.pk).update(state_changed_at=timezone.now() - timedelta(hours=1))
    return job


def test_the_reconcile_task_reconciles_jobs_and_purges_stale_uploads_in_one_run(alice):
    credits_grant(user=alice, pool="studio", amount=100, key="grant")
    job = stuck_submitting(alice)
    stale = staged(alice, age=timedelta(days=2))
    fresh = staged(alice, age=timedelta(hours=1))

    counts = tasks.reconcile()

    assert counts == {
        "submitting": 1,
        "processing": 0,
        "archiving": 0,
        "staged_uploads_purged": 1,
    }
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.finished_at is not None
    assert credits_balances(user=alice)["studio"].held == 0  # its hold was released
    assert not Upload.objects.filter(pk=stale.pk).exists()
    assert Upload.objects.filter(pk=fresh.pk).exists()


def test_the_reconcile_task_with_nothing_to_do_changes_nothing(alice):
    fresh = staged(alice, age=timedelta(hours=1))
    assert tasks.reconcile() == {
        "submitting": 0,
        "processing": 0,
        "archiving": 0,
        "staged_uploads_purged": 0,
    }
    assert stored(fresh)


def test_every_scheduled_task_names_an_entry_point_that_exists():
    """Schedules (migrations 0003, 0007) store these names: renaming an entry
    point would leave the cluster calling nothing."""
    migrations = (ROOT / "jobs" / "migrations").glob("0*.py")
    funcs = {
        f for m in migrations for f in re.findall(r"[\"'](jobs\.tasks\.\w+)[\"']", m.read_text())
    }
    assert {"jobs.tasks.poll_due", "jobs.tasks.reconcile", "jobs.tasks.purge_expired"} <= funcs
    for func in funcs:
        module, name = func.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), func


# --- inline tasks come from the tests' settings only --------------------------------------


def test_tasks_run_inline_in_tests_but_not_with_the_production_settings(settings):
    assert settings.Q_CLUSTER["sync"] is True  # tests/settings.py
    # The production settings with their defaults: nothing from this process's
    # environment (pytest-django's DJANGO_SETTINGS_MODULE, a test's variables).
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "lipsync_site.settings",
        "DATA_DIR": str(settings.MEDIA_ROOT.parent / "data"),
    }
    # pytest imported first, as it is in the suite: the settings must not care.
    code = "import pytest, django; django.setup(); from django.conf import settings; "
    code += "print(settings.Q_CLUSTER['sync'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert (out.returncode, out.stdout.strip()) == (0, "False"), out.stderr
