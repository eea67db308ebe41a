"""Every django-q schedule the migrations create names a function a real node
can import, and each runs there successfully: inline mode never goes through
the scheduler, so a renamed task would otherwise only fail in production."""

import pytest
from django.utils.module_loading import import_string
from django_q.models import Failure, Schedule, Success

from tests.integration.conftest import schedules_restore

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_every_schedule_runs_its_function_on_a_real_node(make_studio):
    schedules = {s.name: s.func for s in schedules_restore()}
    assert set(schedules) == {
        "Poll providers",
        "Reconcile jobs",
        "Delete expired files",
        "Send webhooks",
    }
    for func in schedules.values():
        assert callable(import_string(func)), func

    studio = make_studio()
    studio.start_node("node1")
    # django-q's scheduler looks at due schedules every 30 s.
    studio.wait_until(
        lambda: set(Success.objects.values_list("func", flat=True)) >= set(schedules.values()),
        timeout=75,
        what="every schedule's task succeeding",
    )
    assert not Failure.objects.exists(), list(Failure.objects.values_list("func", "result"))
    for schedule in Schedule.objects.all():
        assert schedule.task, schedule.name  # the id of the task it last started
        assert schedule.repeats == -1  # and it keeps repeating
