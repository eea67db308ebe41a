"""Outbound webhooks: a job made through the API with a `webhook` is POSTed
there when it ends, signed the Standard Webhooks way, retried until it is
delivered, never redirected, never sent to a private address, never lost."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from jobs.accounts.api_keys import api_key_create
from jobs.api.services import api_job_submit, job_answer
from jobs.api.webhooks import (
    RETRY_DELAYS,
    webhook_deliveries_send_due,
    webhook_delivery_attempt,
    webhook_secret,
    webhook_secret_rotate,
)
from jobs.credits.ledger import credits_grant
from jobs.models import DeliveryStatus, Job, JobState, Pool, WebhookDelivery
from jobs.pipeline import lifecycle, poller
from tests.pipeline_support import wait_until


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server that answers each POST with the next of
    `answers` (status, extra headers), the last one repeating, and records it."""

    answers: list[tuple[int, dict]] = field(default_factory=lambda: [(200, {})])
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self.arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.hits.append(Hit(self.path, dict(self.headers.items()), body))
                index = min(len(receiver.hits), len(receiver.answers)) - 1
                status, headers = receiver.answers[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

            do_POST = _answer
            do_GET = _answer

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver(settings):
    settings.FETCH_ALLOW_LOOPBACK = True
    made: list[Receiver] = []

    def make(*answers: tuple[int, dict]) -> Receiver:
        made.append(Receiver(list(answers) or [(200, {})]))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _submission(media_files, url: str):
    from jobs.api.services import Submission

    def upload(name: str, content_type: str) -> SimpleUploadedFile:
        return SimpleUploadedFile(name, media_files[name].read_bytes(), content_type)

    return Submission(
        model="lipsync-image",
        inputs={
            "image": upload("face.png", "image/png"),
            "audio": upload("voice.mp3", "audio/mpeg"),
        },
        webhook=url,
    )


@pytest.fixture
def ended(alice_key, no_submit, media_files):
    """ended(url) -> the delivery a failed API job (webhook=url) left."""
    key, _raw = alice_key
    credits_grant(user=key.owner, pool=Pool.API, amount=500, key="grant:alice:api:wh")

    def make(url: str) -> WebhookDelivery:
        job = api_job_submit(key=key, sub=_submission(media_files, url))
        lifecycle.job_fail(job, message="The provider reported a failure.")
        return WebhookDelivery.objects.get(job=job)

    return make


def _verify(secret: str, hit: Hit) -> dict:
    return Webhook(secret).verify(hit.body, hit.headers)


def test_a_failed_job_is_posted_once_signed_with_the_keys_secret(alice_key, ended, receiver):
    key, _raw = alice_key
    r = receiver()
    delivery = ended(r.url)
    assert delivery.status == DeliveryStatus.PENDING and delivery.event_id.startswith("msg_")

    assert webhook_delivery_attempt(delivery.pk) == DeliveryStatus.DELIVERED
    [hit] = r.hits
    secret = webhook_secret(key)
    assert secret.startswith("whsec_")
    payload = _verify(secret, hit)
    job = Job.objects.get(pk=delivery.job_id)
    assert payload == job_answer(job)
    assert payload["status"] == "failed" and payload["error"] == "The provider reported a failure."
    assert set(payload) == {"id", "model", "status", "output", "error", "executionTime", "timings"}
    assert hit.headers["webhook-id"] == delivery.event_id
    # Another key's secret does not verify it.
    other, _ = api_key_create(owner=key.owner, name="other")
    with pytest.raises(WebhookVerificationError):
        _verify(webhook_secret(other), hit)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    # Delivered is final: another worker's late attempt sends nothing.
    assert webhook_delivery_attempt(delivery.pk) is None
    assert len(r.hits) == 1


def test_a_receiver_answering_500_then_200_gets_it_twice_with_the_same_id(ended, receiver):
    r = receiver((500, {}), (200, {}))
    delivery = ended(r.url)

    assert webhook_delivery_attempt(delivery.pk) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert delivery.last_status_code == 500 and "HTTP 500" in delivery.last_error
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert wait == RETRY_DELAYS[0]
    # Not due yet: the sweep leaves it alone.
    assert webhook_deliveries_send_due() == 0
    assert len(r.hits) == 1

    assert webhook_deliveries_send_due(now=timezone.now() + RETRY_DELAYS[0]) == 1
    assert [h.headers["webhook-id"] for h in r.hits] == [delivery.event_id] * 2
    assert r.hits[0].body == r.hits[1].body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)


def test_retries_grow_and_end_in_failed_after_about_three_days(ended, receiver):
    r = receiver((503, {}))
    delivery = ended(r.url)
    now = timezone.now()
    waits = []
    while True:
        status = webhook_delivery_attempt(delivery.pk, now=now)
        delivery.refresh_from_db()
        if status != DeliveryStatus.PENDING:
            break
        waits.append(delivery.next_attempt_at - delivery.last_attempt_at)
        now = delivery.next_attempt_at + timedelta(seconds=1)
    assert status == DeliveryStatus.FAILED
    assert waits == RETRY_DELAYS and waits == sorted(waits)
    assert timedelta(days=2.5) < sum(waits, timedelta()) < timedelta(days=3.5)
    assert delivery.attempts == len(r.hits) == len(RETRY_DELAYS) + 1
    assert delivery.next_attempt_at is None


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(ended, receiver):
    target = receiver((200, {}))
    r = receiver((302, {"Location": target.url}))
    delivery = ended(r.url)

    assert webhook_delivery_attempt(delivery.pk) == DeliveryStatus.PENDING
    assert len(r.hits) == 1 and target.hits == []
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302
    assert "redirect" in delivery.last_error and "not followed" in delivery.last_error


def test_a_private_webhook_is_refused_at_submission(api, settings):
    settings.FETCH_ALLOW_LOOPBACK = False
    for url in ("http://10.1.2.3/hook", "http://127.0.0.1:9/hook", "http://169.254.169.254/"):
        answer = api.post(
            "/api/v1/lipsync-image",
            {"formState": {"image": "x", "audio": "y"}, "webhook": url},
        )
        assert answer.status_code == 422, url
        assert "webhook" in json.dumps(answer.json()), answer.json()
    assert not Job.objects.exists()


def test_the_guard_refuses_again_at_the_attempt_and_fails_the_delivery(ended, receiver, settings):
    r = receiver()
    delivery = ended(r.url)  # allowed when it was given
    settings.FETCH_ALLOW_LOOPBACK = False  # ...not any more (as if DNS changed)

    assert webhook_delivery_attempt(delivery.pk) == DeliveryStatus.FAILED
    assert r.hits == []
    delivery.refresh_from_db()
    assert "loopback" in delivery.last_error and delivery.last_status_code is None


def test_rotation_signs_with_both_secrets_during_the_grace_then_the_new_only(
    alice_key, ended, receiver
):
    key, _raw = alice_key
    r = receiver()
    old = webhook_secret(key)
    new = webhook_secret_rotate(key)
    assert new != old and new.startswith("whsec_")

    first = ended(r.url)
    webhook_delivery_attempt(first.pk)
    assert len(r.hits[0].headers["webhook-signature"].split(" ")) == 2
    assert _verify(old, r.hits[0])["id"] == _verify(new, r.hits[0])["id"]

    later = ended(r.url)
    webhook_delivery_attempt(later.pk, now=timezone.now() + timedelta(hours=25))
    assert len(r.hits[1].headers["webhook-signature"].split(" ")) == 1
    # Standard Webhooks refuses timestamps more than 5 min from now: verify at that time.
    hit = r.hits[1]
    wh = Webhook(new)
    sig = hit.headers["webhook-signature"]
    stamp = datetime.fromtimestamp(int(hit.headers["webhook-timestamp"]), tz=UTC)
    assert wh.sign(hit.headers["webhook-id"], stamp, hit.body.decode()) == sig
    assert Webhook(old).sign(hit.headers["webhook-id"], stamp, hit.body.decode()) != sig


def test_the_send_is_queued_for_right_after_the_commit(
    ended, receiver, no_submit, django_capture_on_commit_callbacks
):
    r = receiver()
    with django_capture_on_commit_callbacks(execute=True):
        delivery = ended(r.url)
        task = ("jobs.tasks.send_webhook", (delivery.pk,))
        assert task not in no_submit  # not inside the transaction that ends the job
    assert task in no_submit


def test_a_crash_between_the_end_and_the_send_loses_nothing(
    ended, receiver, django_capture_on_commit_callbacks
):
    r = receiver()
    # The job ends and commits; the worker dies before its queued send runs.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        delivery = ended(r.url)
    assert queued and r.hits == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING

    # After the restart, the minute's sweep sends it, once.
    assert webhook_deliveries_send_due() == 1
    assert webhook_deliveries_send_due() == 0
    assert len(r.hits) == 1 and r.hits[0].headers["webhook-id"] == delivery.event_id


@pytest.mark.django_db(transaction=True)
def test_a_completed_job_is_posted_right_after_its_archive(pipeline, media_server, receiver):
    from jobs.accounts.api_keys import api_key_create as make_key

    r = receiver()
    credits_grant(user=pipeline.owner, pool=Pool.API, amount=100, key="grant:alice:api:whe2e")
    key, raw = make_key(owner=pipeline.owner, name="e2e")
    http = requests.Session()
    http.trust_env = False
    submitted = http.post(
        f"{pipeline.studio_url}/api/v1/lipsync-image",
        headers={"Authorization": f"Bearer {raw}"},
        json={
            "formState": {
                "image": media_server.link("face.png"),
                "audio": media_server.link("voice.mp3"),
            },
            "webhook": r.url,
        },
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    wait_until(
        lambda: r.hits,
        step=lambda: poller.poll_due(max_seconds=0.5),
        timeout=60,
        interval=0.2,
        what="the webhook arriving",
    )
    payload = _verify(webhook_secret(key), r.hits[0])
    job = Job.objects.get(uuid=submitted.json()["id"])
    assert job.state == JobState.COMPLETED
    assert payload["status"] == "completed" and payload["output"]
    assert payload["id"] == str(job.uuid) and payload["executionTime"] > 0
    assert http.get(payload["output"], timeout=10).status_code == 200
    assert WebhookDelivery.objects.get(job=job).status == DeliveryStatus.DELIVERED


def test_two_workers_never_send_the_same_attempt(ended, receiver):
    r = receiver((500, {}))
    delivery = ended(r.url)
    now = timezone.now()
    # The first worker's claim holds; a second worker (task or sweep) finds nothing to do.
    from jobs.api.webhooks import _claim

    assert _claim(delivery.pk, now=now) is not None
    assert webhook_delivery_attempt(delivery.pk, now=now) is None
    assert webhook_deliveries_send_due(now=now) == 0
    assert r.hits == []
    # A worker that died holding it: once the claim lapses, the sweep takes it over.
    assert webhook_deliveries_send_due(now=now + timedelta(minutes=2)) == 1
    assert len(r.hits) == 1


def test_a_job_failed_by_staff_is_posted_too(alice_key, no_submit, media_files, receiver, staff):
    from jobs.staff.actions import job_fail_by_staff

    key = alice_key[0]
    credits_grant(user=key.owner, pool=Pool.API, amount=500, key="grant:alice:api:staff")
    r = receiver()
    job = api_job_submit(key=key, sub=_submission(media_files, r.url))
    job_fail_by_staff(job=job, by=staff, reason="stuck at the provider")
    delivery = WebhookDelivery.objects.get(job=job)
    assert webhook_delivery_attempt(delivery.pk) == DeliveryStatus.DELIVERED
    payload = _verify(webhook_secret(key), r.hits[0])
    assert payload["status"] == "failed" and "stuck at the provider" in payload["error"]
