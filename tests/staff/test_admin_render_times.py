"""Staff see what the studio has learnt of each provider's speed, and can make
it start learning again (e.g. after the provider changed its hardware)."""

import pytest
from django.urls import reverse

from jobs.credits.ledger import credits_grant
from jobs.models import JobState, RenderTimes
from jobs.pipeline import lifecycle
from tests.factories import make_job
from tests.pipeline.test_poll_schedule import archived, finished

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:jobs_rendertimes_changelist"


@pytest.fixture
def joypix_for_real(settings):
    settings.JOYPIX_BASE_URL = "https://openapi.joypix.example"
    settings.JOYPIX_API_KEY = "sk-test"


@pytest.fixture
def slow_joypix(joypix_for_real, alice):
    """JoyPix has rendered 480p at 30 s per second of video (twice its page's 15)."""
    credits_grant(user=alice, pool="studio", amount=10_000, key="grant:alice")
    for i in range(12):
        finished(alice, ratio=30.0, ago=500 - i)
    return RenderTimes.objects.get(provider="joypix", resolution="480p")


def test_staff_read_the_learnt_speed(client, staff, slow_joypix):
    client.force_login(staff)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "motion-2-dialog" in page and "480p" in page
    assert "30.0×" in page  # the median
    assert "30.0× – 30.0×" in page  # p2 to p98: a provider that never varied
    assert "about 300 s" in page  # a 10 s clip
    assert "3 s <small>(fixed: the archive time is not measured yet)</small>" in page
    detail = client.get(reverse("admin:jobs_rendertimes_change", args=[slow_joypix.pk]))
    assert detail.status_code == 200 and "30.0×" in detail.content.decode()
    assert client.get(reverse("admin:jobs_rendertimes_add")).status_code == 403


def test_staff_see_the_lag_the_measured_archive_time_leaves(client, staff, alice, slow_joypix):
    for i in range(10):
        archived(alice, after_seen=0.6, ratio=30.0, ago=400 - i)
    finished(alice, ratio=30.0, ago=300)
    client.force_login(staff)
    page = client.get(reverse(CHANGELIST)).content.decode()
    # 5 s poller's p95 (4.75 s) less 0.6 s archiving and the page's 0.5 s wait.
    assert "3.8 s <small>(a 5 s poller's latency, less archiving: 0.6–0.6 s)</small>" in page


def test_learning_again_goes_back_to_the_page_and_forgets_older_jobs(
    client, staff, alice, slow_joypix
):
    probe = make_job(alice, state=JobState.PROCESSING, input_seconds=6.0)
    assert lifecycle.expected_processing(probe).total_seconds() == pytest.approx(180, rel=0.05)

    client.force_login(staff)
    response = client.post(
        reverse(CHANGELIST),
        {"action": "learn_again", "_selected_action": [slow_joypix.pk]},
        follow=True,
    )
    assert "1 render time row restarted" in response.content.decode()
    slow_joypix.refresh_from_db()
    assert slow_joypix.samples == 0 and slow_joypix.learn_from is not None
    # The page's figure (15 s per second at 480p) until new jobs finish...
    assert lifecycle.expected_processing(probe) == lifecycle.expected_render(
        provider="joypix", resolution="480p", seconds=6.0, mode=probe.mode
    )
    assert lifecycle.expected_processing(probe).total_seconds() == pytest.approx(90, rel=0.05)
    # ...and the next job learnt from is the only one: the slow ones are forgotten.
    finished(alice, ratio=16.0)
    slow_joypix.refresh_from_db()
    assert slow_joypix.samples == 1


def test_members_cannot_see_or_restart_render_times(client, alice, slow_joypix):
    client.force_login(alice)
    assert client.get(reverse(CHANGELIST)).status_code == 302
    client.post(
        reverse(CHANGELIST), {"action": "learn_again", "_selected_action": [slow_joypix.pk]}
    )
    slow_joypix.refresh_from_db()
    assert slow_joypix.samples == 12
