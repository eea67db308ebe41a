"""API jobs in the studio: on the member's cards with an "API · key name"
mark, and in the gallery like any other."""

import pytest
from django.test import Client

from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_job(api, media_server, no_submit):
    body = {
        "formState": {
            "image": media_server.link("face.png"),
            "audio": media_server.link("voice.mp3"),
        }
    }
    return Job.objects.get(uuid=api.post("/api/v1/lipsync-image", body).json()["id"])


def test_an_api_job_has_a_card_marked_with_its_key(alice, api_job):
    browser = Client()
    browser.force_login(alice)
    page = browser.get("/").content.decode()
    assert f'id="job-{api_job.pk}"' in page
    assert '<span class="source-mark">API · render script</span>' in page
    assert "API pool" in page


def test_a_studio_job_has_no_mark(alice, api_job):
    Job.objects.filter(pk=api_job.pk).update(source="studio", pool="studio", api_key=None)
    browser = Client()
    browser.force_login(alice)
    assert "source-mark" not in browser.get("/").content.decode()


def test_a_key_deleted_later_still_marks_its_jobs(alice, api_job):
    api_job.api_key.delete()
    browser = Client()
    browser.force_login(alice)
    assert "API · deleted key" in browser.get("/").content.decode()


def test_a_finished_api_job_is_in_the_team_gallery(alice, bob, api_job):
    from django.utils import timezone

    Job.objects.filter(pk=api_job.pk).update(
        state="completed", output="outputs/x.mp4", finished_at=timezone.now()
    )
    browser = Client()
    browser.force_login(bob)
    page = browser.get("/gallery/").content.decode()
    assert f"/gallery/{api_job.pk}/" in page
