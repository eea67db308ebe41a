"""A member stops waiting for a job overdue at its provider: the job fails
with its own code, the hold is released once, and a completion that comes
later (or at the same moment) is ignored and charges nothing. And the
reconciler's own give-up, at twice the expected time.

The race runs in real threads with their own connections; CI runs this file
on SQLite and on PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import EntryKind, FailureCode, Job, LedgerEntry, Pool
from jobs.pipeline import lifecycle, poller
from jobs.pipeline.lifecycle import JobActionRefused
from jobs.providers.base import TaskStatus
from tests.factories import make_job
from tests.pipeline_support import GRANT, ledger_check, wait_until
from tests.threads_support import run_together

RTF = 1.0  # the studio's idea of the sandbox's speed here: 7 s of audio, 7 s expected


def entries(job) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(job=job).order_by("pk").values_list("kind", "amount"))


@pytest.fixture
def overdue(db, settings, alice):
    """alice's JoyPix job, 7 s of audio, sent 20 s ago (expected 7 s: overdue from 10.5 s)."""
    settings.SANDBOX_RTF = RTF
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="grant:alice:stuck")
    created = timezone.now() - timedelta(seconds=21)
    return make_job(
        alice, state="processing", created=created, submitted_after=timedelta(seconds=1)
    )


def test_stop_waiting_fails_the_job_releases_its_hold_and_says_who_and_that_a_late_video_is_ignored(
    overdue, alice
):
    lifecycle.job_stop_waiting(overdue, by=alice)

    job = Job.objects.get(pk=overdue.pk)
    assert job.state == "failed"
    assert job.failure_code == FailureCode.STOPPED_WAITING
    assert job.stopped_by == alice
    assert job.finished_at is not None
    assert f"Stopped waiting by {alice.username}" in job.error
    assert "after 1 min at JoyPix" in job.error or "min at JoyPix" in job.error
    assert "JoyPix may still finish this video" in job.error
    assert "the studio ignores it and charges nothing" in job.error
    assert entries(job) == [(EntryKind.HOLD, 30), (EntryKind.RELEASE, 30)]
    assert credits_balances(user=alice)[Pool.STUDIO].available == 100
    assert "Ledger OK" in ledger_check()


def test_a_job_not_yet_overdue_cannot_be_stopped(db, settings, alice):
    settings.SANDBOX_RTF = RTF
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="grant:alice:early")
    # Sent 9 s ago, 7 s expected: overdue only from 10.5 s.
    job = make_job(
        alice,
        state="processing",
        created=timezone.now() - timedelta(seconds=10),
        submitted_after=timedelta(seconds=1),
    )

    with pytest.raises(JobActionRefused, match="not overdue yet"):
        lifecycle.job_stop_waiting(job, by=alice)

    assert Job.objects.get(pk=job.pk).state == "processing"
    assert entries(job) == [(EntryKind.HOLD, 30)]


def test_stopping_twice_releases_once_and_says_it_was_done(overdue, alice):
    lifecycle.job_stop_waiting(overdue, by=alice)

    with pytest.raises(JobActionRefused, match="already stopped waiting"):
        lifecycle.job_stop_waiting(Job.objects.get(pk=overdue.pk), by=alice)

    assert entries(overdue) == [(EntryKind.HOLD, 30), (EntryKind.RELEASE, 30)]


def test_a_completion_reported_after_stop_waiting_changes_nothing_and_charges_nothing(
    overdue, alice
):
    stale = Job.objects.get(pk=overdue.pk)  # the poller's copy, claimed before the stop
    lifecycle.job_stop_waiting(overdue, by=alice)

    lifecycle.job_status_apply(
        stale, result=TaskStatus(state="completed", video_url="https://cdn.example/late.mp4")
    )
    lifecycle.job_poll_now(overdue.pk)  # a provider webhook's "poll now"

    job = Job.objects.get(pk=overdue.pk)
    assert job.state == "failed" and job.failure_code == FailureCode.STOPPED_WAITING
    assert job.output_url == "" and job.credits_charged is None
    assert entries(job) == [(EntryKind.HOLD, 30), (EntryKind.RELEASE, 30)]
    assert credits_balances(user=alice)[Pool.STUDIO].available == 100


@pytest.mark.django_db(transaction=True)
def test_ten_stop_waiting_clicks_and_a_racing_completion_release_the_hold_exactly_once(
    settings, alice
):
    settings.SANDBOX_RTF = RTF
    for round_ in range(3):
        credits_grant(user=alice, pool=Pool.STUDIO, amount=30, key=f"grant:race:{round_}")
        job = make_job(
            alice,
            state="processing",
            created=timezone.now() - timedelta(seconds=30),
            submitted_after=timedelta(seconds=1),
        )
        claimed = Job.objects.get(pk=job.pk)  # as the poller holds it

        def work(i: int, job=job, claimed=claimed):
            if i == 10:
                done = TaskStatus(state="completed", video_url="https://cdn.example/out.mp4")
                lifecycle.job_status_apply(claimed, result=done)
                return "completion"
            lifecycle.job_stop_waiting(Job.objects.get(pk=job.pk), by=alice)
            return "stopped"

        results = run_together(11, work)

        final = Job.objects.get(pk=job.pk)
        stopped = results.count("stopped")
        refused = [r for r in results if isinstance(r, JobActionRefused)]
        assert not [r for r in results if isinstance(r, Exception) and r not in refused], results
        kinds = [kind for kind, _amount in entries(job)]
        if final.state == "failed":
            # Stop waiting won: one click moved it, the others were refused,
            # the completion found it failed and changed nothing.
            assert stopped == 1 and len(refused) == 9
            assert final.failure_code == FailureCode.STOPPED_WAITING
            assert final.output_url == ""
            assert kinds == [EntryKind.HOLD, EntryKind.RELEASE]
        else:
            # The completion won: the video is being kept, no click released anything.
            assert final.state == "archiving"
            assert stopped == 0 and len(refused) == 10
            assert kinds == [EntryKind.HOLD]
    assert "Ledger OK" in ledger_check()


# --- end to end, with the sandbox finishing the task late ------------------------------------


def test_the_sandbox_finishing_after_stop_waiting_is_ignored(pipeline, settings, alice):
    # The sandbox takes 3 s; the studio expects 2 s x 0.05 = 0.1 s: overdue at once.
    pipeline.sandbox.config.min_delay = 3.0
    job = pipeline.create_dialog(left=1.5, right=2.0)
    job.refresh_from_db()
    assert job.state == "processing"
    wait_until(lambda: lifecycle.stop_waiting_from(job) <= timezone.now(), what="overdue")

    lifecycle.job_stop_waiting(job, by=alice)
    [task] = pipeline.sandbox.tasks.values()
    wait_until(lambda: task.status == "completed", timeout=10, what="the late completion")
    poller.poll_due(max_seconds=0.5)
    lifecycle.job_poll_now(job.pk)

    job.refresh_from_db()
    assert job.state == "failed" and job.failure_code == FailureCode.STOPPED_WAITING
    assert job.credits_charged is None and not job.output
    assert pipeline.studio_balance().available == GRANT
    assert [kind for kind, _ in pipeline.entries(job)] == [EntryKind.HOLD, EntryKind.RELEASE]
    assert "Ledger OK" in ledger_check()


# --- the reconciler's own limit ------------------------------------------------------------


def test_the_reconciler_gives_up_at_twice_the_expected_time_not_four_times(db, settings, alice):
    settings.SANDBOX_RTF = 25.0  # a real provider's 720p speed
    settings.JOB_PROCESSING_TIMEOUT_SECONDS = 1800
    credits_grant(user=alice, pool=Pool.STUDIO, amount=100, key="grant:alice:slow")
    # 10 minutes of audio at 25 x: 4 h 10 min expected.
    job = make_job(
        alice,
        state="processing",
        created=timezone.now() - timedelta(hours=9),
        submitted_after=timedelta(seconds=1),
        input_seconds=600.0,
    )
    assert lifecycle.processing_give_up_after(job) == timedelta(hours=8, minutes=20)

    assert lifecycle.jobs_reconcile()["processing"] == 1

    job.refresh_from_db()
    assert job.state == "failed"
    assert "within 500 min" in job.error
    assert entries(job) == [(EntryKind.HOLD, 30), (EntryKind.RELEASE, 30)]


def test_a_short_job_still_gets_the_30_minute_floor(db, settings, alice):
    settings.SANDBOX_RTF = 15.0
    job = make_job(alice, state="processing", submitted_after=timedelta(seconds=1), held=None)

    assert lifecycle.processing_give_up_after(job) == timedelta(minutes=30)
