"""The database refuses a job the state machine would mishandle (migration
0013_job_invariants), whatever writes it: each invalid write raises
IntegrityError beside the same write made valid, which goes through. CI runs
this file on SQLite and on PostgreSQL.

And the migration applies to jobs as the pipeline leaves them in every state.
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from jobs.models import Job, JobState

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def valid(owner, **fields) -> dict:
    """A processing job as job_submit leaves it, with `fields` over it."""
    return {
        "owner": owner,
        "mode": "dialog",
        "provider": "joypix",
        "provider_model": "motion-2-dialog",
        "resolution": "480p",
        "state": JobState.PROCESSING,
        "provider_task_id": "task-1",
        "credits_per_unit": 15,
        "credits_held": 30,
        "submitted_at": NOW,
    } | fields


def refused(write) -> bool:
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


COMPLETED = {"state": JobState.COMPLETED, "finished_at": NOW, "credits_charged": 30}
FAILED = {"state": JobState.FAILED, "finished_at": NOW}

# (what is wrong, the invalid fields, the same made valid)
CASES = [
    ("an unknown state", {"state": "paused"}, {"state": JobState.QUEUED}),
    ("an unknown mode", {"mode": "karaoke"}, {"mode": "talking_photo"}),
    ("an unknown resolution", {"resolution": "4k"}, {"resolution": "720p"}),
    ("an unknown dialog order", {"dialog_order": "shouting"}, {"dialog_order": "meanwhile"}),
    ("a charge over the hold", COMPLETED | {"credits_charged": 31}, COMPLETED),
    ("a charge on a failed job", FAILED | {"credits_charged": 0}, FAILED),
    ("a charge on a live job", {"credits_charged": 15}, {"credits_charged": None}),
    ("a completed job without finished_at", COMPLETED | {"finished_at": None}, COMPLETED),
    ("a failed job without finished_at", FAILED | {"finished_at": None}, FAILED),
    ("a live job with finished_at", {"finished_at": NOW}, {"finished_at": None}),
    ("processing without a task", {"provider_task_id": ""}, {"provider_task_id": "t"}),
    (
        "archiving without an output address",
        {"state": JobState.ARCHIVING, "output_url": ""},
        {"state": JobState.ARCHIVING, "output_url": "https://cdn.example/out.mp4"},
    ),
    ("a deleted live job", {"deleted_at": NOW}, FAILED | {"deleted_at": NOW}),
    ("an unknown source", {"source": "fax"}, {"source": "api"}),
    ("an unknown pool", {"pool": "bonus"}, {"pool": "api"}),
]


@pytest.mark.parametrize(("wrong", "bad", "good"), CASES, ids=[c[0] for c in CASES])
def test_an_invalid_job_is_refused_on_insert(alice, wrong, bad, good):
    assert refused(lambda: Job.objects.create(**valid(alice, **bad))), wrong
    assert not refused(lambda: Job.objects.create(**valid(alice, **good)))
    assert Job.objects.count() == 1


@pytest.mark.parametrize(("wrong", "bad", "good"), CASES, ids=[c[0] for c in CASES])
def test_an_invalid_job_is_refused_on_a_conditional_update(alice, wrong, bad, good):
    """The pipeline's own writes are UPDATEs on the expected state."""
    job = Job.objects.create(**valid(alice))
    mine = Job.objects.filter(pk=job.pk, state=JobState.PROCESSING)
    assert refused(lambda: mine.update(**bad)), wrong
    assert Job.objects.get(pk=job.pk).state == JobState.PROCESSING
    assert not refused(lambda: mine.update(**good))


# --- the migration ----------------------------------------------------------------------

BEFORE = [("jobs", "0012_job_claims_and_polls")]
AFTER = [("jobs", "0013_job_invariants")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_applies_to_jobs_in_every_state_the_pipeline_leaves(alice):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        OldJob = old.get_model("jobs", "Job")
        owner_id = alice.pk
        base = valid(None, owner_id=owner_id)
        base.pop("owner")
        rows = [
            base | {"state": "queued", "provider_task_id": "", "submitted_at": None},
            base | {"state": "submitting", "provider_task_id": "", "submitted_at": None},
            base,
            base | {"state": "archiving", "output_url": "https://cdn.example/o.mp4"},
            base | COMPLETED | {"output": "outputs/o.mp4"},
            base | COMPLETED | {"deleted_at": NOW, "output": ""},
            base | FAILED | {"error": "The provider refused this job."},
            base | FAILED | {"provider_task_id": "", "submitted_at": None},  # cancelled
            base | {"mode": "talking_photo", "dialog_order": ""},
            base | {"dialog_order": "sequential", "provider": "lipsync_studio"},
        ]
        for row in rows:
            OldJob.objects.create(**row)
    finally:
        call_command("migrate", "jobs", verbosity=0)
    assert MigrationExecutor(connection).loader.applied_migrations.keys() >= set(AFTER)
    assert Job.objects.count() == len(rows)
    # ...and the constraints are in force after it.
    assert refused(lambda: Job.objects.filter(state="queued").update(finished_at=NOW))


def test_the_pipeline_moves_keep_the_invariants(alice):
    """Each move as lifecycle.py writes it, one after the other, is accepted."""
    job = Job.objects.create(**valid(alice, state=JobState.QUEUED, provider_task_id=""))
    moves = [
        (JobState.QUEUED, {"state": JobState.SUBMITTING}),
        (JobState.SUBMITTING, {"state": JobState.PROCESSING, "provider_task_id": "t-9"}),
        (
            JobState.PROCESSING,
            {"state": JobState.ARCHIVING, "output_url": "https://cdn.example/o.mp4"},
        ),
        (
            JobState.ARCHIVING,
            {"state": JobState.COMPLETED, "credits_charged": 15, "finished_at": NOW},
        ),
        (JobState.COMPLETED, {"deleted_at": NOW + timedelta(days=1), "output": ""}),
    ]
    for expected, fields in moves:
        assert Job.objects.filter(pk=job.pk, state=expected).update(**fields) == 1
