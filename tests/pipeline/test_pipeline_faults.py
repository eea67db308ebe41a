"""Provider faults over real HTTP: each job ends terminal with the right
credits, the ledger check stays clean, and nothing whose outcome is unknown
is ever sent twice."""

import socket
import threading
from datetime import timedelta

import pytest
import requests
from django.core.files.storage import default_storage
from django.db import close_old_connections
from django.utils import timezone

from jobs import tasks
from jobs.models import EntryKind, Job
from jobs.pipeline import lifecycle, poller
from jobs.pipeline.lifecycle import JobActionRefused
from tests.pipeline_support import (
    GRANT,
    SANDBOX_KEY,
    assert_released,
    ledger_check,
    run_until_terminal,
    state_of,
    wait_until,
)

# --- refused submissions are sent again -----------------------------------------------


def test_a_429_is_sent_again_after_retry_after_and_completes(pipeline, alice):
    pipeline.sandbox.faults.update({"submit_429": 1, "retry_after": 1})
    job = pipeline.create_dialog()

    job.refresh_from_db()
    assert job.state == "queued"
    assert job.error == (
        "The provider did not take this job yet (the provider is receiving too many "
        "requests, HTTP 429); trying again in 1 s."
    )
    assert job.next_poll_at >= timezone.now() + timedelta(seconds=0.5)
    assert pipeline.studio_balance().held == job.credits_held

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    assert done.error == ""
    assert done.submit_attempts == 2
    refused, accepted = pipeline.submit_calls()
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.at - refused.at >= 0.95  # Retry-After: 1 was honoured
    assert len(pipeline.sandbox.tasks) == 1
    assert done.credits_charged == done.credits_held == 15
    assert pipeline.studio_balance().available == GRANT - 15
    assert "Ledger OK" in ledger_check()


@pytest.mark.parametrize("fault", ["submit_503", "submit_502"])
def test_a_busy_provider_is_tried_again_and_the_job_completes(pipeline, fault):
    pipeline.sandbox.faults.update({fault: 1})
    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "completed", done.error
    assert [c.status for c in pipeline.submit_calls()] == [int(fault[-3:]), 200]
    assert len(pipeline.sandbox.tasks) == 1
    assert pipeline.entries(done) == [(EntryKind.HOLD, 15), (EntryKind.CAPTURE, 15)]
    assert "Ledger OK" in ledger_check()


def test_a_provider_that_is_down_for_a_moment_gets_the_job_when_it_is_back(pipeline, settings):
    """Connection refused: the request certainly never arrived, so it is sent
    again once the provider is back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings.SANDBOX_URL = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nobody listens
    job = pipeline.create_dialog()

    job.refresh_from_db()
    assert job.state == "queued"
    assert "could not connect" in job.error and "trying again" in job.error
    settings.SANDBOX_URL = pipeline.sandbox.url  # back up

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    assert done.submit_attempts == 2
    assert pipeline.submissions() == 1 and len(pipeline.sandbox.tasks) == 1
    assert done.credits_charged == 15
    assert "Ledger OK" in ledger_check()


def test_a_provider_that_keeps_refusing_fails_the_job_after_a_few_tries(pipeline, settings):
    settings.JOB_MAX_SUBMIT_ATTEMPTS = 2
    pipeline.sandbox.faults.update({"submit_503": -1})
    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert "after 2 tries" in done.error and "never started" in done.error
    assert [c.status for c in pipeline.submit_calls()] == [503, 503]
    assert pipeline.sandbox.tasks == {}
    assert_released(done)
    assert pipeline.studio_balance().available == GRANT
    assert "Ledger OK" in ledger_check()


def test_a_wrong_provider_key_fails_the_job_without_showing_the_key(pipeline, settings):
    settings.SANDBOX_API_KEY = "sk_wrong_key_for_the_sandbox"
    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert done.error.startswith("The provider refused this job")
    assert "sk_wrong_key" not in done.error and SANDBOX_KEY not in done.error
    assert [c.status for c in pipeline.submit_calls()] == [401]
    assert_released(done)
    assert "Ledger OK" in ledger_check()


# --- outcome unknown: failed, released, never sent again ------------------------------------


def _never_resent(pipeline, job: Job) -> None:
    """Whatever the cluster runs next, the job is not sent again."""
    poller.poll_due(max_seconds=0.3)
    lifecycle.jobs_reconcile()
    tasks.submit_job(job.pk)
    tasks.poll_job(job.pk)
    tasks.archive_job(job.pk)
    poller.poll_due(max_seconds=0.3)
    lifecycle.jobs_reconcile()
    assert pipeline.submissions() == 1
    assert state_of(job) == "failed"


def test_a_500_on_submit_fails_the_job_and_it_is_never_sent_again(pipeline):
    pipeline.sandbox.faults.update({"submit_500": 1})
    job = pipeline.create_dialog()

    job.refresh_from_db()
    assert job.state == "failed"
    assert "HTTP 500" in job.error
    assert "not sent again" in job.error and "credits were released" in job.error
    assert job.provider_task_id == ""
    assert_released(job)
    assert pipeline.studio_balance().available == GRANT
    # The provider did start a task: that is why it must not be sent again.
    assert pipeline.submissions() == 1 and len(pipeline.sandbox.tasks) == 1

    _never_resent(pipeline, job)
    assert "Ledger OK" in ledger_check()


@pytest.mark.parametrize(
    ("faults", "says"),
    [
        ({"submit_504": 1}, "HTTP 504"),
        ({"submit_reset": 1}, "connection to the provider broke"),
        ({"submit_malformed": 1, "malformed_kind": "not_json"}, "could not be read"),
        ({"submit_malformed": 1, "malformed_kind": "no_id"}, "no task id"),
    ],
    ids=["504", "reset", "malformed-not-json", "malformed-no-task-id"],
)
def test_an_unreadable_answer_to_a_submit_fails_the_job_unsent_again(pipeline, faults, says):
    pipeline.sandbox.faults.update(faults)
    job = pipeline.create_dialog()

    job.refresh_from_db()
    assert job.state == "failed"
    assert says in job.error and "not sent again" in job.error
    assert_released(job)
    assert pipeline.submissions() == 1
    _never_resent(pipeline, job)
    assert pipeline.studio_balance().available == GRANT
    assert "Ledger OK" in ledger_check()


def test_a_submit_that_hangs_past_the_read_timeout_fails_unsent_again(pipeline, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    pipeline.sandbox.faults.update({"submit_timeout": 1, "timeout_seconds": 3})
    job = pipeline.create_dialog()

    job.refresh_from_db()
    assert job.state == "failed"
    assert "did not answer within 0.5 s" in job.error and "not sent again" in job.error
    assert_released(job)
    assert pipeline.studio_balance().available == GRANT
    _never_resent(pipeline, job)
    assert "Ledger OK" in ledger_check()


def test_a_job_left_submitting_by_a_dead_worker_is_failed_by_the_reconciler(
    pipeline, settings, monkeypatch
):
    """A worker killed in the middle of its POST leaves the job 'submitting':
    the reconciler cannot know whether it arrived, so it fails and releases it."""
    settings.JOB_SUBMITTING_STUCK_SECONDS = 60
    monkeypatch.setattr(lifecycle, "enqueue", lambda *args: None)
    job = pipeline.create_dialog()
    Job.objects.filter(pk=job.pk).update(
        state="submitting",
        submit_attempts=1,
        state_changed_at=timezone.now() - timedelta(seconds=30),
    )
    assert lifecycle.jobs_reconcile()["submitting"] == 0  # not stuck yet
    Job.objects.filter(pk=job.pk).update(state_changed_at=timezone.now() - timedelta(seconds=61))

    assert lifecycle.jobs_reconcile()["submitting"] == 1

    job.refresh_from_db()
    assert job.state == "failed" and "not sent again" in job.error
    assert_released(job)
    tasks.submit_job(job.pk)
    poller.poll_due(max_seconds=0.3)
    assert pipeline.submissions() == 0
    assert "Ledger OK" in ledger_check()


# --- the task at the provider ------------------------------------------------------------------


def test_a_task_the_provider_fails_keeps_its_reason_and_releases_the_hold(pipeline):
    pipeline.sandbox.faults.update({"task_fail": 1, "fail_message": "No face found in the photo"})
    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert done.error == "No face found in the photo"
    assert not done.output
    # Its inputs are no longer served to anyone.
    [task] = pipeline.sandbox.tasks.values()
    for _role, url in task.inputs.values():
        assert requests.get(url, timeout=5).status_code == 404
    assert_released(done)
    assert pipeline.studio_balance().available == GRANT
    assert pipeline.submissions() == 1
    assert "Ledger OK" in ledger_check()


@pytest.mark.parametrize(
    "faults",
    [
        {"poll_malformed": 1, "malformed_kind": "not_json"},
        {"poll_malformed": 1, "malformed_kind": "no_id"},
        {"poll_500": 3},  # every quick repeat of one poll fails too
        {"poll_429": 1, "retry_after": 1},
    ],
    ids=["malformed-not-json", "malformed-no-status", "500", "429"],
)
def test_a_bad_answer_to_a_poll_is_waited_out_and_the_job_completes(pipeline, faults):
    pipeline.sandbox.faults.update(faults)
    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "completed", done.error
    polls = pipeline.poll_calls()
    assert polls[0].fault is not None and polls[-1].status == 200
    failed_at = max(c.at for c in polls if c.fault)
    assert polls[-1].at - failed_at >= 0.7  # it backed off before asking again
    assert done.credits_charged == 15
    assert pipeline.submissions() == 1
    assert "Ledger OK" in ledger_check()


def test_a_provider_that_only_answers_garbage_is_given_up_at_the_timeout(pipeline, settings):
    """Garbage is waited out with growing pauses, not taken for a verdict; the
    reconciler ends the job at the processing timeout, hold released."""
    settings.JOB_PROCESSING_TIMEOUT_SECONDS = 3
    pipeline.sandbox.faults.update({"poll_malformed": -1})
    job = pipeline.create_dialog()

    done = run_until_terminal(job, reconcile=True)

    assert done.state == "failed"
    assert "did not finish" in done.error and "credits were released" in done.error
    polls = pipeline.poll_calls()
    assert 2 <= len(polls) <= 4  # backing off: ~1 s, then ~2 s
    gaps = [b.at - a.at for a, b in zip(polls, polls[1:], strict=False)]
    assert gaps == sorted(gaps)
    assert_released(done)
    assert pipeline.studio_balance().available == GRANT
    assert "Ledger OK" in ledger_check()


def test_a_task_that_never_finishes_is_failed_by_the_reconciler(pipeline, settings):
    # The limit is max(this setting, 2 x the expected processing time); the
    # expected time of 2 s of sandbox video is 2 x SANDBOX_RTF = 0.1 s.
    settings.JOB_PROCESSING_TIMEOUT_SECONDS = 2
    pipeline.sandbox.faults.update({"never_finish": 1})
    job = pipeline.create_dialog(left=1.5, right=2.0)

    poller.poll_due(max_seconds=1.2)
    assert lifecycle.jobs_reconcile()["processing"] == 0  # not overdue yet
    assert state_of(job) == "processing"
    [task] = pipeline.sandbox.tasks.values()
    assert task.status == "processing"

    done = run_until_terminal(job, reconcile=True)

    assert done.state == "failed"
    assert "did not finish this job" in done.error
    assert_released(done)
    assert pipeline.studio_balance().available == GRANT
    assert pipeline.submissions() == 1
    assert "Ledger OK" in ledger_check()


# --- members' actions ----------------------------------------------------------------------


def test_cancelling_a_queued_job_releases_it_and_the_late_task_sends_nothing(pipeline, monkeypatch):
    deferred: list[tuple] = []
    monkeypatch.setattr(lifecycle, "enqueue", lambda *args: deferred.append(args))
    job = pipeline.create_dialog()
    assert pipeline.studio_balance().available == GRANT - 15

    lifecycle.job_cancel(job)

    job.refresh_from_db()
    assert job.state == "failed" and job.error.startswith("Cancelled")
    assert_released(job)
    assert pipeline.studio_balance().available == GRANT
    # The queued submit task runs after all, and the poll loop comes by: nothing is sent.
    assert deferred == [("jobs.tasks.submit_job", job.pk)]
    tasks.submit_job(job.pk)
    poller.poll_due(max_seconds=0.3)
    assert pipeline.submissions() == 0
    with pytest.raises(JobActionRefused):
        lifecycle.job_cancel(job)
    assert "Ledger OK" in ledger_check()


def test_a_job_waiting_out_a_429_can_be_cancelled(pipeline):
    pipeline.sandbox.faults.update({"submit_429": 1, "retry_after": 1})
    job = pipeline.create_dialog()
    assert state_of(job) == "queued"

    lifecycle.job_cancel(Job.objects.get(pk=job.pk))

    assert_released(job)
    poller.poll_due(max_seconds=1.5)
    assert [c.status for c in pipeline.submit_calls()] == [429]
    assert pipeline.sandbox.tasks == {}
    assert "Ledger OK" in ledger_check()


def test_a_job_already_sent_cannot_be_cancelled(pipeline):
    job = pipeline.create_dialog()
    job.refresh_from_db()
    assert job.state == "processing"

    with pytest.raises(JobActionRefused, match="already been sent"):
        lifecycle.job_cancel(job)

    done = run_until_terminal(job)
    assert done.state == "completed" and done.credits_charged == 15
    assert "Ledger OK" in ledger_check()


def test_retrying_a_failed_job_makes_a_new_job_and_never_resends_the_old(pipeline):
    pipeline.sandbox.faults.update({"task_fail": 1})
    failed = run_until_terminal(pipeline.create_dialog(left=3.2, right=6.1))
    assert failed.state == "failed"
    first_task = failed.provider_task_id

    again = lifecycle.job_retry(failed)

    assert again.pk != failed.pk and again.retried_from_id == failed.pk
    assert (again.mode, again.provider, again.resolution) == ("dialog", "joypix", "480p")
    assert again.credits_held == 30  # quoted anew: 6.1 s -> two 5 s units at 15
    assert pipeline.entries(again) == [(EntryKind.HOLD, 30)]
    old_inputs = {i.role: i for i in failed.inputs.all()}
    new_inputs = {i.role: i for i in again.inputs.all()}
    assert set(new_inputs) == {"image", "left_audio", "right_audio"}
    for role, new in new_inputs.items():
        old = old_inputs[role]
        assert new.file.name != old.file.name  # a copy, not the same file
        assert (new.size, new.duration) == (old.size, old.duration)
        with default_storage.open(new.file.name) as a, default_storage.open(old.file.name) as b:
            assert a.read() == b.read()

    done = run_until_terminal(again)

    assert done.state == "completed", done.error
    assert done.provider_task_id != first_task
    assert done.credits_charged == 30
    # The original was not touched, nor sent again: two submissions, one per job.
    assert pipeline.submissions() == 2 and len(pipeline.sandbox.tasks) == 2
    failed.refresh_from_db()
    assert failed.state == "failed" and failed.provider_task_id == first_task
    assert_released(failed)
    tasks.submit_job(failed.pk)
    lifecycle.jobs_reconcile()
    poller.poll_due(max_seconds=0.3)
    assert pipeline.submissions() == 2
    with pytest.raises(JobActionRefused):
        lifecycle.job_retry(failed)  # once is enough
    # A completed job may be tried again too, once (tests/studio/test_job_page.py).
    assert pipeline.studio_balance().available == GRANT - 30
    assert "Ledger OK" in ledger_check()


# --- a stored provider key that cannot be read ---------------------------------------------


def test_an_account_whose_key_cannot_be_read_fails_the_job_unsent(pipeline, settings, staff):
    from cryptography.fernet import Fernet

    from jobs.providers.accounts import provider_account_save

    provider_account_save(
        provider="joypix",
        name="Team",
        base_url=pipeline.sandbox.url,
        enabled=True,
        api_key=SANDBOX_KEY,
        by=staff,
    )
    settings.PROVIDER_KEYS_SECRET = Fernet.generate_key().decode()  # the secret changed

    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "failed"
    assert "re-enter its key" in done.error and "not sent" in done.error
    assert SANDBOX_KEY not in done.error
    assert pipeline.submissions() == 0
    assert_released(done)
    assert "Ledger OK" in ledger_check()


# --- archiving ------------------------------------------------------------------------------


def test_a_slow_archive_stamps_the_completion_when_it_ends(pipeline):
    """Open pages ask for cards changed since their last request: a completion
    stamped with the download's start would be missed by a page that asked
    during a long download. (The sandbox sends the video over 2 s.)"""
    pipeline.sandbox.faults.update({"output_slow": 1, "slow_output_seconds": 2})
    done = run_until_terminal(pipeline.create_dialog())

    assert done.state == "completed", done.error
    [download] = [c for c in pipeline.sandbox.calls if c.path.startswith("/outputs/")]
    assert download.fault == "output_slow"
    # The call is recorded as its answer starts; the video took 2 s more.
    sent = download.at + 2.0
    assert done.updated_at.timestamp() >= sent - 0.3
    assert done.finished_at.timestamp() >= sent - 0.3


def test_the_poll_loop_leaves_a_fresh_archive_to_its_task(pipeline, monkeypatch):
    """A download can take minutes; the loop polls on and only takes over an
    archive whose task has not started it within the hand-over time."""
    job = pipeline.create_dialog()
    Job.objects.filter(pk=job.pk).update(
        state="archiving",
        state_changed_at=timezone.now(),
        next_poll_at=None,
        output_url=f"{pipeline.sandbox.url}/nothing-here.mp4",
    )
    archived = []
    monkeypatch.setattr(lifecycle, "job_archive", archived.append)

    poller.poll_due(max_seconds=0.3)
    assert archived == []

    Job.objects.filter(pk=job.pk).update(
        state_changed_at=timezone.now() - poller.ARCHIVE_HANDOFF - timedelta(seconds=1)
    )
    poller.poll_due(max_seconds=0.3)
    assert archived and set(archived) == {job.pk}


# --- a crashed archive and a forgotten task recover as fast as is safe ------------------------


def _archiving_after_a_crash(pipeline, settings, monkeypatch) -> Job:
    """A job whose provider has finished, with its archive task lost in a crash
    right after it claimed the job (the worker was SIGKILLed mid-download)."""
    crashed = []

    def claim_then_die(job_id):
        lease = timedelta(seconds=settings.JOB_ARCHIVE_LEASE_SECONDS)
        claimed = Job.objects.filter(pk=job_id, state="archiving").update(
            next_poll_at=timezone.now() + lease, archive_attempts=1
        )
        crashed.append(claimed)

    monkeypatch.setattr(tasks, "archive_job", claim_then_die)
    job = pipeline.create_dialog()
    wait_until(
        lambda: state_of(job) == "archiving",
        step=lambda: poller.poll_due(max_seconds=0.5),
        what="the provider finishing",
    )
    assert crashed == [1]
    monkeypatch.undo()
    return job


def test_an_archive_whose_worker_died_is_taken_over_within_one_short_lease(
    pipeline, settings, monkeypatch
):
    settings.JOB_ARCHIVE_LEASE_SECONDS = 4
    job = _archiving_after_a_crash(pipeline, settings, monkeypatch)
    claimed_at = Job.objects.get(pk=job.pk).next_poll_at - timedelta(seconds=4)

    # The reconciler hands it to another worker once the lease has run out.
    done = run_until_terminal(job, reconcile=True, timeout=20)

    assert done.state == "completed", done.error
    assert done.archive_attempts == 2
    assert timedelta(seconds=4) <= done.finished_at - claimed_at < timedelta(seconds=15)
    assert pipeline.entries(done) == [
        (EntryKind.HOLD, done.credits_held),
        (EntryKind.CAPTURE, done.credits_charged),
    ]
    assert "Ledger OK" in ledger_check()


def test_a_download_longer_than_the_lease_keeps_its_claim(pipeline, settings):
    """The lease is short but renewed as the bytes arrive: another node's
    reconciler, asking all through a 7 s download with a 4 s lease, never
    starts the archive a second time beside it."""
    settings.JOB_ARCHIVE_LEASE_SECONDS = 4
    pipeline.sandbox.faults.update({"output_slow": 1, "slow_output_seconds": 7})
    job = pipeline.create_dialog()
    attempts_seen = []
    stop = threading.Event()

    def other_node():
        try:
            while not stop.is_set():
                # Enqueues (inline: runs) the archive when its claim is out.
                lifecycle.jobs_reconcile()
                attempts_seen.append(Job.objects.get(pk=job.pk).archive_attempts)
                stop.wait(0.5)
        finally:
            close_old_connections()

    rival = threading.Thread(target=other_node)
    rival.start()
    try:
        done = run_until_terminal(job, timeout=40)
    finally:
        stop.set()
        rival.join(timeout=30)

    assert done.state == "completed", done.error
    assert done.archive_attempts == 1
    assert len(attempts_seen) >= 10 and max(attempts_seen) == 1  # asked all through
    outputs = [c for c in pipeline.sandbox.calls if c.path.startswith("/outputs/")]
    assert len(outputs) == 1 and outputs[0].fault == "output_slow"


def test_a_task_the_provider_forgot_fails_after_a_few_not_found_answers(pipeline, settings):
    """Every status request answered 404: after JOB_NOT_FOUND_POLLS of them
    over JOB_NOT_FOUND_SECONDS the job fails and its hold is released, instead
    of being polled until the 30-minute processing timeout."""
    settings.JOB_NOT_FOUND_POLLS = 3
    settings.JOB_NOT_FOUND_SECONDS = 2
    pipeline.sandbox.faults.update({"task_forget": 1})
    job = pipeline.create_dialog()

    done = run_until_terminal(job, timeout=20)

    assert done.state == "failed"
    assert done.error.startswith(
        "The provider no longer knows this job: it answered “not found” 3 times"
    )
    assert "nothing was charged" in done.error
    assert_released(done)
    polls = pipeline.poll_calls()
    assert [c.status for c in polls] == [404, 404, 404]
    assert polls[-1].at - polls[0].at >= 2.0
    assert "Ledger OK" in ledger_check()


def test_a_not_found_answer_now_and_then_does_not_fail_the_job(pipeline, settings):
    settings.JOB_NOT_FOUND_POLLS = 2
    settings.JOB_NOT_FOUND_SECONDS = 0
    pipeline.sandbox.faults.update({"poll_404": 1})
    job = pipeline.create_dialog()

    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    assert [c.status for c in pipeline.poll_calls()][0] == 404
    assert (done.not_found_count, done.not_found_since) == (0, None)
