"""Issue 12: a receiver that is down while the cluster is SIGKILLed and
restarted still gets the delivery once it is back. Real processes: the job
ends on a qcluster node, the first attempt finds the receiver down (connection
refused), the node is SIGKILLed right then and started again, the receiver
comes up, and the "Send webhooks" schedule's sweep delivers the same event:
standardwebhooks verifies it with the key's secret, and its webhook-id is the
one the delivery row held before the kill.

The restarted node's scheduler is also the first to look at the schedules
(the node was killed before its first look), so the test then checks that
every schedule the migrations create names a function the node imports and
runs successfully: inline mode never goes through the scheduler, so a renamed
task would otherwise only fail in production."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils.module_loading import import_string
from django_q.models import Failure, Schedule, Success
from standardwebhooks.webhooks import Webhook

from bench.processes import free_port
from jobs.api.webhooks import webhook_secret
from jobs.models import DeliveryStatus, Job, WebhookDelivery
from tests.integration.conftest import schedules_restore, submit_api

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Receiver:
    """A loopback receiver on a port chosen beforehand; down until `up()`."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hooks/lipsync"
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self.httpd = None

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.hits.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def test_a_receiver_down_through_a_cluster_crash_gets_the_delivery_once_back_and_schedules_run(
    make_studio, member, media
):
    receiver = Receiver(free_port())  # reserved, and nobody listens there yet
    # Production's schedules, the webhook sweep among them, all due now.
    schedules = {s.name: s.func for s in schedules_restore()}
    studio = make_studio()
    studio.start_sandbox()
    studio.start_web()
    studio.start_node("node1")
    job_id = submit_api(
        member,
        "/api/v1/lipsync-image",
        {"image": media["photo.png"], "audio": media["left.mp3"]},
        webhook=receiver.url,
    )

    # The job ends and its first attempt finds nobody listening...
    first_failed = WebhookDelivery.objects.filter(job__uuid=job_id, attempts=1).exclude(
        last_error=""
    )
    delivery = studio.wait_until(
        first_failed.first, timeout=60, what="the first webhook attempt failing"
    )
    # ...and the node dies right then, nothing cleaned up.
    studio.kill("node1")
    assert Job.objects.get(uuid=job_id).state == "completed"
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error == "The receiver could not be reached."
    assert receiver.hits == []

    try:
        studio.restart("node1")
        receiver.up()
        restarted = time.monotonic()
        # django-q's scheduler looks at the schedules every 30 s.
        studio.wait_until(
            lambda: receiver.hits, timeout=90, what="the delivery reaching the receiver"
        )
        waited = time.monotonic() - restarted
        studio.wait_until(
            lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED,
            timeout=10,
            what="the delivery marked delivered",
        )
    finally:
        receiver.down()

    assert len(receiver.hits) == 1
    headers, body = receiver.hits[0]
    # Standard Webhooks' reference verifier, with the key's secret.
    payload = Webhook(webhook_secret(member.key)).verify(body, headers)
    assert headers["webhook-id"] == delivery.event_id  # the id it had before the crash
    assert payload == json.loads(body)
    assert (payload["id"], payload["status"]) == (job_id, "completed")
    assert payload["output"].startswith(studio.web_url)
    done = WebhookDelivery.objects.get(pk=delivery.pk)
    assert (done.attempts, done.last_status_code) == (2, 204)
    print(f"\ndelivered {waited:.1f} s after the node's restart")

    # Every schedule ran its function on the restarted node.
    assert set(schedules) == {
        "Poll providers",
        "Reconcile jobs",
        "Delete expired files",
        "Send webhooks",
    }
    for func in schedules.values():
        assert callable(import_string(func)), func
    studio.wait_until(
        lambda: set(Success.objects.values_list("func", flat=True)) >= set(schedules.values()),
        timeout=30,
        what="every schedule's task succeeding",
    )
    assert not Failure.objects.exists(), list(Failure.objects.values_list("func", "result"))
    for schedule in Schedule.objects.all():
        assert schedule.task and schedule.repeats == -1, schedule.name  # started, and repeating
