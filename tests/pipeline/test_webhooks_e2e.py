"""lipsync.studio webhooks end to end over real HTTP: the sandbox POSTs to the
studio's signed webhook URL on the live server, and (tasks running inline)
the studio asks the sandbox for the job's status there and then. A webhook
is only a hint: replayed, forged and early ones change nothing wrong, and a
lost one is made up for by the poll loop."""

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core import signing
from django.urls import reverse

from jobs import tasks
from jobs.models import EntryKind, Job
from jobs.pipeline import lifecycle, poller
from jobs.pipeline.webhooks import webhook_url
from tests.pipeline_support import (
    GRANT,
    LIPSYNC_JOBS,
    create_talking_photo,
    every_log_record_into,
    ledger_check,
    lipsync_poll_calls,
    lipsync_requests,
    run_until_terminal,
    state_of,
    wait_for_sandbox_task_thread,
    wait_until,
)

FAR = timedelta(seconds=30)  # "the poll loop would not come by in this test"


@pytest.fixture
def webhooks_on(pipeline, settings, monkeypatch):
    """Submissions carry a webhook (PUBLIC_BASE_URL is the live server's http URL).
    The poll loop must not run unless a test runs it itself."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    loops: list[float] = []
    real_poll_due = poller.poll_due

    def poll_due(*, max_seconds):
        loops.append(max_seconds)
        return real_poll_due(max_seconds=max_seconds)

    monkeypatch.setattr(poller, "poll_due", poll_due)
    return loops


def slow_first_poll(settings) -> None:
    """The studio expects the sandbox to take 60 s per second of video, so the
    first scheduled poll is a minute or more away; only a webhook can finish
    the job in time."""
    settings.SANDBOX_RTF = 60


def submitted(job: Job) -> Job:
    job.refresh_from_db()
    assert job.state == "processing", job.error
    return job


def the_task(pipeline):
    [task] = pipeline.sandbox.tasks.values()
    return task


def deliveries(pipeline) -> list[tuple[str, object]]:
    return [(d.status, d.result) for d in pipeline.sandbox.webhooks]


def assert_completed_once(pipeline, job: Job, seconds: float) -> Job:
    """Completed, archived once and charged once for `seconds` of 480p video
    (under lipsync.studio's 5 s minimum: 5 s at 2 credits)."""
    done = Job.objects.get(pk=job.pk)
    assert done.state == "completed", done.error
    assert done.error == ""
    assert done.archive_attempts == 1
    assert done.output_seconds == pytest.approx(seconds, abs=0.25)
    assert seconds < 5
    assert done.credits_charged == done.credits_held == 10
    assert pipeline.entries(done) == [(EntryKind.HOLD, 10), (EntryKind.CAPTURE, 10)]
    assert pipeline.studio_balance().available == GRANT - 10
    assert "Ledger OK" in ledger_check()
    return done


def test_a_webhook_completes_the_job_within_a_second_without_the_poll_loop(
    pipeline, settings, webhooks_on
):
    slow_first_poll(settings)
    job = submitted(create_talking_photo(pipeline, seconds=1.5))

    # The submission named the job's signed webhook URL on the studio.
    [(_model, body, _key_ok)] = lipsync_requests(pipeline)
    prefix = pipeline.studio_url + "/webhooks/lipsync_studio/"
    assert body["webhook"].startswith(prefix)
    # (Compared by what it signs, not as text: the token carries its signing time.)
    token = body["webhook"].removeprefix(prefix).rstrip("/")
    assert signing.loads(token, salt="jobs.webhook") == job.pk
    assert the_task(pipeline).webhook == body["webhook"]
    assert job.next_poll_at - job.submitted_at > FAR

    wait_until(lambda: state_of(job) == "completed", timeout=10, what="the webhook's completion")
    # The job completes while the studio answers the webhook; the sandbox notes
    # the delivery once it has the answer.
    wait_until(lambda: len(pipeline.sandbox.webhooks) == 1, what="the delivery's answer")

    task = the_task(pipeline)
    assert task.status == "completed"
    done = assert_completed_once(pipeline, job, 1.5)
    # Completed (archived and charged) within a second of the sandbox finishing,
    # by the one status request the webhook caused.
    assert 0 <= done.finished_at.timestamp() - task.completed_at < 1.0
    assert deliveries(pipeline) == [("completed", 200)]
    assert done.poll_count == 1
    assert [(c.path, c.status) for c in lipsync_poll_calls(pipeline)] == [
        (LIPSYNC_JOBS + task.id, 200)
    ]
    assert webhooks_on == []  # the poll loop never ran


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    """The tasks queued (still run inline, Q_SYNC), by name."""
    names: list[str] = []
    real_enqueue = lifecycle.enqueue

    def enqueue(func: str, *args: object) -> None:
        names.append(func)
        real_enqueue(func, *args)

    monkeypatch.setattr(lifecycle, "enqueue", enqueue)
    return names


def test_the_worker_whose_poll_sees_completed_archives_it_without_a_second_task(
    pipeline, settings, webhooks_on, queued, monkeypatch
):
    """On the cluster a second task waits for the broker (up to half a second
    on the database broker) and a free worker: the webhook's worker archives
    at once instead."""
    slow_first_poll(settings)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 240}
    real_download = lifecycle._download
    budgets: list[float] = []

    def download(url, **kwargs):
        budgets.append(kwargs["max_seconds"])
        real_download(url, **kwargs)

    monkeypatch.setattr(lifecycle, "_download", download)
    job = submitted(create_talking_photo(pipeline, seconds=1.5))

    wait_until(lambda: state_of(job) == "completed", timeout=10, what="the webhook's completion")

    assert_completed_once(pipeline, job, 1.5)
    assert "jobs.tasks.poll_job" in queued
    assert "jobs.tasks.archive_job" not in queued
    assert webhooks_on == []
    # The one task's timeout covers the poll and the archive: the download
    # gets all but a minute of it, less what the poll took.
    [budget] = budgets
    assert 175 < budget < 180


def test_an_archive_task_arriving_while_the_worker_archives_does_not_archive_twice(
    pipeline, settings, webhooks_on, monkeypatch
):
    """The webhook's worker archives; a duplicate archive_job (a task delivered
    again, the reconciler's) arriving mid-download finds the job claimed and
    leaves it: one download, one charge."""
    slow_first_poll(settings)
    real_download = lifecycle._download
    during: list[tuple[int, int]] = []

    def download(url, **kwargs):
        pk = Job.objects.get(output_url=url).pk
        tasks.archive_job(pk)  # a second worker, while this one downloads
        lifecycle.jobs_reconcile()  # and the reconciler's look at archiving jobs
        during.append((pk, Job.objects.get(pk=pk).archive_attempts))
        real_download(url, **kwargs)

    monkeypatch.setattr(lifecycle, "_download", download)
    job = submitted(create_talking_photo(pipeline, seconds=1.5))

    wait_until(lambda: state_of(job) == "completed", timeout=10, what="the webhook's completion")

    assert during == [(job.pk, 1)]  # one claim; the duplicate never reached a download
    task = the_task(pipeline)
    outputs = [c for c in pipeline.sandbox.calls if c.path == "/outputs/" + task.output_name]
    assert len(outputs) == 1
    assert_completed_once(pipeline, job, 1.5)


def test_a_lost_webhook_is_made_up_for_by_the_poll_loop(pipeline, webhooks_on):
    pipeline.sandbox.faults.update({"webhook_never": 1})
    job = submitted(create_talking_photo(pipeline, seconds=1.5))
    task = pipeline.sandbox.wait_for(job.provider_task_id, timeout=10)
    assert task.status == "completed" and task.webhook  # it was asked for, and never came

    wait_for_sandbox_task_thread(pipeline.sandbox, task.id)  # all it would send is sent
    assert state_of(job) == "processing"  # nothing happens without a webhook or a poll
    assert pipeline.sandbox.webhooks == []
    assert lipsync_poll_calls(pipeline) == []

    run_until_terminal(job)

    assert webhooks_on, "the poll loop ran"
    done = assert_completed_once(pipeline, job, 1.5)
    assert [c.status for c in lipsync_poll_calls(pipeline)] == [200] * done.poll_count


def test_a_webhook_sent_twice_or_replayed_completes_and_charges_once(
    pipeline, settings, webhooks_on, caplog
):
    slow_first_poll(settings)
    pipeline.sandbox.faults.update({"webhook_twice": 1})
    with every_log_record_into(caplog.handler):
        job = submitted(create_talking_photo(pipeline, seconds=1.5))
        wait_until(lambda: len(pipeline.sandbox.webhooks) == 2, timeout=10, what="two webhooks")
        done = Job.objects.get(pk=job.pk)

        # Replayed later, by anyone who saw it: the same URL and body.
        task = the_task(pipeline)
        replay = requests.post(
            task.webhook,
            data=json.dumps({"id": task.id, "status": "completed", "output": "x"}),
            headers={"Content-Type": "application/json"},
            timeout=5,
        )

    assert deliveries(pipeline) == [("completed", 200), ("completed", 200)]
    assert replay.status_code == 200
    assert assert_completed_once(pipeline, job, 1.5).updated_at == done.updated_at
    # One status request: the second webhook and the replay found the job finished.
    assert [c.status for c in lipsync_poll_calls(pipeline)] == [200]
    assert Job.objects.get(pk=job.pk).poll_count == 1
    assert webhooks_on == []
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]


def test_an_early_webhook_costs_one_status_request_and_the_real_one_completes(
    pipeline, settings, webhooks_on
):
    slow_first_poll(settings)
    # A moment before the sandbox starts, so the studio has recorded the task id
    # by the time the early webhook (sent as processing begins) arrives.
    pipeline.sandbox.config.start_delay = 0.3
    # The render outlasts the 5 s during which a poll's answer is fresh, so the
    # real webhook is answered at once (see the next test for a quicker one).
    pipeline.sandbox.config.min_delay = 6.0
    pipeline.sandbox.faults.update({"webhook_early": 1})
    job = submitted(create_talking_photo(pipeline, seconds=1.5))

    wait_until(lambda: len(pipeline.sandbox.webhooks) == 1, timeout=10, what="the early webhook")
    after_early = Job.objects.get(pk=job.pk)
    assert after_early.state == "processing"
    assert after_early.output_url == ""
    assert not after_early.output
    assert after_early.credits_charged is None
    assert pipeline.entries(after_early) == [(EntryKind.HOLD, 10)]
    # It asked at once, heard "processing", and waits for the expected finish again.
    [early_poll] = lipsync_poll_calls(pipeline)
    assert early_poll.status == 200
    assert after_early.poll_count == 1
    assert after_early.next_poll_at - datetime.fromtimestamp(early_poll.at, tz=UTC) > FAR

    wait_until(lambda: state_of(job) == "completed", timeout=15, what="the real webhook")
    wait_until(lambda: len(pipeline.sandbox.webhooks) == 2, what="the delivery's answer")

    task = the_task(pipeline)
    assert early_poll.at < task.completed_at  # the early poll's answer was "processing"
    assert deliveries(pipeline) == [("completed", 200), ("completed", 200)]
    done = assert_completed_once(pipeline, job, 1.5)
    assert 0 <= done.finished_at.timestamp() - task.completed_at < 1.0
    assert [c.status for c in lipsync_poll_calls(pipeline)] == [200, 200]
    assert done.poll_count == 2
    assert webhooks_on == []


def test_a_real_webhook_right_after_an_early_one_is_answered_when_the_quiet_period_ends(
    pipeline, settings, webhooks_on
):
    """The early webhook's status request said "processing"; the real one comes
    a moment later, within the 5 s that answer stays fresh: it is not lost,
    but asked about when those 5 s end (by the poll loop, which runs whenever
    jobs are live), not at once."""
    slow_first_poll(settings)
    pipeline.sandbox.config.start_delay = 0.3
    pipeline.sandbox.faults.update({"webhook_early": 1})
    job = submitted(create_talking_photo(pipeline, seconds=1.5))
    wait_until(lambda: len(pipeline.sandbox.webhooks) == 2, timeout=10, what="both webhooks")
    [early_poll] = lipsync_poll_calls(pipeline)
    waiting = Job.objects.get(pk=job.pk)
    assert waiting.state == "processing"
    assert waiting.next_poll_at == waiting.last_polled_at + timedelta(seconds=5)

    done = run_until_terminal(job, timeout=15)

    assert done.state == "completed"
    second_poll = lipsync_poll_calls(pipeline)[1]
    assert 4.9 <= second_poll.at - early_poll.at < 7.0
    assert len(lipsync_poll_calls(pipeline)) == 2
    assert_completed_once(pipeline, job, 1.5)


def test_fifty_replays_of_one_webhook_cost_one_status_request(pipeline, settings, webhooks_on):
    """A valid token replayed fifty times, as fast as it goes: the first makes
    the job due and a worker asks the provider; the rest arrive within a few
    seconds of that request and ask nothing more (they used to cost one
    status request each)."""
    slow_first_poll(settings)
    pipeline.sandbox.faults.update({"never_finish": 1})
    job = submitted(create_talking_photo(pipeline, seconds=1.5))
    url = webhook_url(job)
    session = requests.Session()
    session.trust_env = False

    started = time.monotonic()
    for _ in range(50):
        assert session.post(url, json={"id": "x", "status": "completed"}, timeout=10).ok
    elapsed = time.monotonic() - started

    # Polls run inline in the webhook's request, so all have happened by now;
    # one more is allowed per 5 s quiet period, should the replays take longer.
    polls = len(lipsync_poll_calls(pipeline))
    assert 1 <= polls <= 1 + int(elapsed // 5), (polls, elapsed)
    after = Job.objects.get(pk=job.pk)
    assert after.poll_count == polls
    # The replays left one request for when the answer is 5 s old, no more.
    assert after.next_poll_at == after.last_polled_at + timedelta(seconds=5)
    assert webhooks_on == []


def test_forged_webhooks_are_refused_and_cost_no_status_request(pipeline, settings, webhooks_on):
    slow_first_poll(settings)
    pipeline.sandbox.faults.update({"never_finish": 1})  # no real webhook will come
    job = submitted(create_talking_photo(pipeline, seconds=1.5))
    due = job.next_poll_at
    url = webhook_url(job)
    token = url.rstrip("/").rsplit("/", 1)[1]
    body = json.dumps({"id": job.provider_task_id, "status": "completed", "output": "x"})

    def post(target: str) -> int:
        return requests.post(
            target, data=body, headers={"Content-Type": "application/json"}, timeout=5
        ).status_code

    forged = {
        "tampered signature": url[:-4] + ("AAA" if not url.endswith("AAA/") else "BBB") + "/",
        "job id for a token": url.replace(token, str(job.pk)),
        "another salt": url.replace(token, signing.dumps(job.pk)),
        "another provider's address": url.replace("/lipsync_studio/", "/joypix/"),
        "no such job": pipeline.studio_url
        + reverse(
            "provider_webhook",
            args=["lipsync_studio", signing.dumps(job.pk + 1000, salt="jobs.webhook")],
        ),
    }
    for what, target in forged.items():
        assert post(target) in (403, 404), what
    assert requests.get(url, timeout=5).status_code == 405

    # None of them cost a status request or moved the job's next poll.
    assert lipsync_poll_calls(pipeline) == []
    after = Job.objects.get(pk=job.pk)
    assert (after.state, after.next_poll_at, after.poll_count) == ("processing", due, 0)

    # The genuine URL with a made-up body: one status request for the job's own
    # task, whose answer decides ("processing": nothing changes).
    lying = json.dumps({"id": "someone-elses-job", "status": "failed", "error": "boom"})
    answer = requests.post(url, data=lying, headers={"Content-Type": "application/json"}, timeout=5)
    assert answer.status_code == 200
    assert [(c.path, c.status) for c in lipsync_poll_calls(pipeline)] == [
        (LIPSYNC_JOBS + job.provider_task_id, 200)
    ]
    after = Job.objects.get(pk=job.pk)
    assert (after.state, after.error, after.poll_count) == ("processing", "", 1)
    assert pipeline.entries(after) == [(EntryKind.HOLD, 10)]
    assert "Ledger OK" in ledger_check()
    assert webhooks_on == []
