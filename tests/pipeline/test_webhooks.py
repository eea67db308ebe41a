"""Provider webhooks are hints: a good one makes its job due for a status
request at once; forged, replayed, misdirected or late ones change nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.pipeline import lifecycle
from jobs.pipeline.webhooks import webhook_url
from jobs.providers.base import SubmitRequest
from tests.factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(lifecycle, "enqueue", lambda func, *args: calls.append((func, *args)))
    return calls


@pytest.fixture
def job(alice, settings):
    settings.PUBLIC_BASE_URL = "https://studio.example"
    return make_job(
        alice,
        mode="talking_photo",
        provider="lipsync_studio",
        state="processing",
        held=None,
        task_id="task-1",
        submitted_at=timezone.now(),
        next_poll_at=timezone.now() + timedelta(seconds=90),
    )


def post(client, url: str, body: bytes = b'{"id": "task-1", "status": "completed"}'):
    path = url.removeprefix("https://studio.example")
    return client.post(path, body, content_type="application/json")


def test_a_webhook_makes_its_job_due_now_and_asks_a_worker_to_poll(client, job, enqueued):
    response = post(client, webhook_url(job))

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.next_poll_at <= timezone.now()
    assert enqueued == [("jobs.tasks.poll_job", job.pk)]
    assert job.state == "processing"  # the body is not trusted: the status request decides


def test_a_replayed_webhook_changes_nothing_more(client, job, enqueued):
    url = webhook_url(job)
    post(client, url)
    due = Job.objects.get(pk=job.pk).next_poll_at

    again = post(client, url)

    assert again.status_code == 200
    assert Job.objects.get(pk=job.pk).next_poll_at == due
    assert len(enqueued) == 1


@pytest.mark.parametrize(
    ("polled_ago", "asks"), [(2, False), (4.5, False), (6, True), (None, True)]
)
def test_a_webhook_soon_after_a_status_request_asks_nothing_more(
    client, job, enqueued, polled_ago, asks
):
    """A poll's answer is fresh for a few seconds: a webhook (a replay, or a
    second one) arriving within them costs no further status request."""
    now = timezone.now()
    last = now - timedelta(seconds=polled_ago) if polled_ago is not None else None
    Job.objects.filter(pk=job.pk).update(last_polled_at=last)

    assert post(client, webhook_url(job)).status_code == 200

    after = Job.objects.get(pk=job.pk)
    if asks:
        assert after.next_poll_at <= timezone.now()
        assert enqueued == [("jobs.tasks.poll_job", job.pk)]
    else:
        # Not now: once the answer it has is 5 s old (the job was due in 90 s).
        assert after.next_poll_at == last + timedelta(seconds=5)
        assert enqueued == []


def test_a_webhook_for_a_job_due_within_a_second_asks_nothing_more(client, job, enqueued):
    soon = timezone.now() + timedelta(milliseconds=500)
    Job.objects.filter(pk=job.pk).update(next_poll_at=soon)

    assert post(client, webhook_url(job)).status_code == 200

    assert Job.objects.get(pk=job.pk).next_poll_at == soon
    assert enqueued == []


def test_a_forged_token_is_refused_and_changes_nothing(client, job, enqueued):
    url = webhook_url(job)
    forged = url[:-3] + ("aaa" if not url.endswith("aaa/") else "bbb") + "/"
    before = Job.objects.get(pk=job.pk).next_poll_at

    for path in (forged, f"https://studio.example/webhooks/lipsync_studio/{job.pk}/"):
        assert post(client, path).status_code == 404
    assert Job.objects.get(pk=job.pk).next_poll_at == before
    assert enqueued == []


def test_a_token_sent_to_another_providers_address_is_refused(client, job, enqueued):
    url = webhook_url(job).replace("/lipsync_studio/", "/joypix/")

    assert post(client, url).status_code == 404
    assert enqueued == []


def test_a_webhook_for_a_finished_job_is_ignored(client, job, enqueued):
    Job.objects.filter(pk=job.pk).update(
        state="completed", next_poll_at=None, finished_at=timezone.now()
    )

    assert post(client, webhook_url(job)).status_code == 200
    assert Job.objects.get(pk=job.pk).next_poll_at is None
    assert enqueued == []


def test_webhooks_only_answer_posts(client, job):
    path = webhook_url(job).removeprefix("https://studio.example")
    assert client.get(path).status_code == 405


@pytest.mark.parametrize(
    ("base", "allow_http", "expected"),
    [
        ("https://studio.example", False, True),
        ("http://127.0.0.1:8000", False, False),
        ("http://127.0.0.1:8000", True, True),
    ],
)
def test_submissions_carry_a_webhook_only_where_a_provider_can_reach_it(
    job, settings, base, allow_http, expected
):
    settings.PUBLIC_BASE_URL = base
    settings.WEBHOOKS_ALLOW_HTTP = allow_http

    url = lifecycle._webhook_url(job)

    assert (url is not None) == expected
    if url:
        assert url.startswith(f"{base}/webhooks/lipsync_studio/")


def test_joypix_submissions_never_carry_a_webhook(job, settings):
    Job.objects.filter(pk=job.pk).update(provider="joypix", provider_model="motion-2-dialog")
    job.refresh_from_db()
    assert lifecycle._webhook_url(job) is None
    assert SubmitRequest.__dataclass_fields__["webhook_url"].default is None
