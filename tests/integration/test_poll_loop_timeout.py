"""Q_TIMEOUT and Q_RETRY against the poll loop, on a real node. A loop that
outlives the cluster's timeout (here POLL_LOOP_SECONDS 60 against Q_TIMEOUT
10, with a job the sandbox never finishes) is stopped by django-q, frees its
lease on the way out, and, with max_attempts 1, is never delivered again:
not after Q_RETRY (when the ORM broker would hand an unacknowledged task out
a second time), not ever, so no second loop starts from it."""

import json
import time

import pytest
from django_q.brokers import get_broker
from django_q.models import OrmQ, Task

from jobs.models import Job, Lease
from tests.integration.conftest import submit_api

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Q_TIMEOUT, Q_RETRY = 10, 20


def test_a_poll_loop_outliving_the_timeout_is_stopped_once_and_never_retried(
    make_studio, member, media
):
    studio = make_studio(Q_TIMEOUT=str(Q_TIMEOUT), Q_RETRY=str(Q_RETRY), POLL_LOOP_SECONDS="60")
    studio.start_sandbox(SANDBOX_FAULTS=json.dumps({"never_finish": 1}))
    studio.start_web()
    studio.start_node("node1")
    job_id = submit_api(
        member, "/api/v1/lipsync-image", {"image": media["photo.png"], "audio": media["left.mp3"]}
    )
    loops = Task.objects.filter(func="jobs.tasks.poll_due")
    timed_out = studio.wait_until(
        lambda: loops.filter(success=False).first(),
        timeout=Q_TIMEOUT + 30,
        what="the poll loop stopped by Q_TIMEOUT",
    )
    assert "exceeded maximum timeout value" in str(timed_out.result)
    assert (timed_out.stopped - timed_out.started).total_seconds() == pytest.approx(
        Q_TIMEOUT, abs=3
    )
    # Its lease was released as it stopped, so the next loop need not wait for it.
    assert Lease.objects.get(name="poller").holder == ""

    # Past Q_RETRY from its start: nothing delivered it again.
    wait = Q_RETRY + 3 - (time.time() - timed_out.started.timestamp())
    time.sleep(max(wait, 0))
    timed_out.refresh_from_db()
    assert timed_out.attempt_count == 1
    assert not loops.filter(attempt_count__gt=1).exists()
    assert loops.filter(success=False).count() == 1
    assert get_broker().queue_size() == 0 and not OrmQ.objects.exists()
    # The job is still at the provider (it never finishes), not failed by this.
    assert Job.objects.get(uuid=job_id).state == "processing"
