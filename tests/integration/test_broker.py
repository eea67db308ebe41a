"""The tasks really go through the broker the environment names: Redis when
REDIS_URL is set (CI's PostgreSQL + Redis run), else the ORM broker. A job
made while no cluster node runs leaves its submit task waiting in that broker
(a Redis list, and no OrmQ row; or an OrmQ row); a node started afterwards
takes it from there and the job completes."""

import pytest
from django.conf import settings
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.models import OrmQ, Task

from jobs.models import Job
from tests.integration.conftest import submit_api

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_tasks_wait_in_the_configured_broker_until_a_node_takes_them(make_studio, member, media):
    broker = get_broker()
    if settings.REDIS_URL:
        assert isinstance(broker, Redis), type(broker)
        assert broker.ping()
    else:
        assert isinstance(broker, ORM), type(broker)

    studio = make_studio()
    studio.start_sandbox()
    studio.start_web()  # and no cluster node yet
    job_id = submit_api(
        member,
        "/api/v1/lipsync-image",
        {"image": media["photo.png"], "audio": media["left.mp3"]},
    )

    # The submit task (and the poll loop's kick) wait in the broker.
    studio.wait_until(lambda: broker.queue_size() >= 1, timeout=10, what="a task in the broker")
    waiting = broker.queue_size()
    if settings.REDIS_URL:
        assert broker.connection.llen(broker.list_key) == waiting
        assert not OrmQ.objects.exists()  # nothing went through the database
    else:
        assert OrmQ.objects.count() == waiting
    assert Job.objects.get(uuid=job_id).state == "queued"

    studio.start_node("node1")
    studio.wait_until(
        lambda: Job.objects.get(uuid=job_id).state == "completed",
        timeout=60,
        what="the job completing once a node runs",
    )
    studio.wait_until(
        lambda: broker.queue_size() == 0 and not OrmQ.objects.exists(),
        timeout=30,
        what="the broker drained (every task taken and acknowledged)",
    )
    # The node ran it: django-q's own record of the submit task.
    assert Task.objects.filter(func="jobs.tasks.submit_job", success=True).count() == 1
