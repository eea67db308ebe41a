"""The provider's own word for a processing job is kept, so its card can say
"Waiting at JoyPix" while JoyPix's task is still "submitted" (in its line),
and "Rendering" once it starts; a change of word reaches open pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.models import Job
from jobs.pipeline import lifecycle
from jobs.providers.base import TaskStatus
from jobs.providers.joypix import STATES
from jobs.studio.cards import card_for
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def test_joypixs_submitted_is_waiting_in_its_line():
    assert STATES["submitted"] == "pending"


def test_a_pending_task_shows_as_waiting_at_joypix_then_rendering(alice):
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice:states")
    job = make_job(
        alice,
        state="processing",
        created=timezone.now() - timedelta(seconds=5),
        submitted_after=timedelta(seconds=1),
    )
    before = Job.objects.get(pk=job.pk).updated_at

    lifecycle.job_status_apply(Job.objects.get(pk=job.pk), result=TaskStatus(state="pending"))

    waiting = Job.objects.get(pk=job.pk)
    assert waiting.provider_state == "pending"
    assert waiting.updated_at > before  # open pages ask for cards changed since
    card = card_for(waiting)
    assert card.state_label == "Waiting at JoyPix"
    assert card.status_text.startswith("Waiting in JoyPix’s line · sent")
    assert card.progress_start is None  # no bar running towards a render not begun

    lifecycle.job_status_apply(waiting, result=TaskStatus(state="processing"))

    rendering = card_for(Job.objects.get(pk=job.pk))
    assert rendering.state_label == "Processing"
    assert rendering.status_text.startswith("Rendering")
    assert rendering.progress_start is not None
