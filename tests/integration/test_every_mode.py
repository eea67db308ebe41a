"""Jobs of every mode, on both providers where a mode has two, made through the
REST API and the Studio form of a real gunicorn, run by a real `qcluster`
node (Q_SYNC off) against the sandbox process: each ends completed, its video
archived in storage and playable, its credits settled, each submitted to the
provider once.

They are made before any node runs, so their tasks must wait in the broker
the environment names: a Redis list (and no OrmQ row) under REDIS_URL, OrmQ
rows otherwise; the node started afterwards takes them from there.

No django-q schedule exists in this test: the poll loop that finishes these
jobs can only have been started by the submissions' kick (kick_poller), the
path inline mode never runs."""

import re
import time

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule, Task

from jobs.credits.ledger import credits_balances
from jobs.models import Job, LedgerEntry, Pool
from tests.integration.conftest import sandbox_stats, submit_api
from tests.pipeline_support import ledger_check

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def studio_form_dialog(member, media) -> None:
    """A JoyPix dialog made as a member makes it: each file sent to its field
    as it is chosen (the upload partial names the staged file), then the form."""
    http = member.browser()
    staged = {}
    for role, name in (
        ("image", "photo.png"),
        ("left_audio", "left.mp3"),
        ("right_audio", "right.wav"),
    ):
        with open(media[name], "rb") as fh:
            answer = http.post(
                f"{member.base_url}/studio/uploads/{role}/",
                data={"mode": "dialog"},
                files={role: (name, fh)},
                headers={"HX-Request": "true"},
                timeout=60,
            )
        assert answer.status_code == 200, answer.text
        staged[f"{role}_upload"] = re.search(
            rf'name="{role}_upload" value="(\d+)"', answer.text
        ).group(1)
    answer = http.post(
        f"{member.base_url}/studio/jobs/",
        data={"mode": "dialog", "provider": "joypix", "resolution": "480p", "seed": "7", **staged},
        headers={"HX-Request": "true"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def test_every_mode_completes_through_the_real_cluster(make_studio, member, media):
    studio = make_studio()
    studio.start_sandbox()
    studio.start_web()  # and no cluster node yet

    photo, left, right, clip = (
        media[n] for n in ("photo.png", "left.mp3", "right.wav", "clip.mp4")
    )
    api_jobs = {
        "dialog on JoyPix": submit_api(
            member,
            "/v1/lip-sync/motion-2-dialog",
            {"image_url": photo, "left_audio_url": left, "right_audio_url": right},
            resolution="480p",
            provider="joypix",
        ),
        "talking photo on JoyPix": submit_api(
            member,
            "/v1/lip-sync/motion-2",
            {"image_url": photo, "audio_url": left},
            provider="joypix",
        ),
        "dialog on lipsync.studio": submit_api(
            member,
            "/api/v1/lipsync-image-multi",
            {"image": photo, "left_audio": left, "right_audio": right},
            provider="lipsync_studio",
        ),
        "talking photo on lipsync.studio": submit_api(
            member,
            "/api/v1/lipsync-image",
            {"image": photo, "audio": right},
            provider="lipsync_studio",
        ),
        "video dub on lipsync.studio": submit_api(
            member, "/api/v1/lipsync-video", {"video": clip, "audio": left}
        ),
    }
    studio_form_dialog(member, media)
    jobs = Job.objects.all()
    assert jobs.count() == 6
    assert set(jobs.values_list("state", flat=True)) == {"queued"}

    # Six submit tasks (and the poll loop's kicks) wait in the broker.
    broker = get_broker()
    studio.wait_until(lambda: broker.queue_size() >= 6, timeout=10, what="6 tasks in the broker")
    if settings.REDIS_URL:
        assert broker.connection.llen(broker.list_key) == broker.queue_size()
        assert not OrmQ.objects.exists()  # nothing went through the database
    else:
        assert OrmQ.objects.count() == broker.queue_size()

    studio.start_node("node1")
    started = time.monotonic()

    studio.wait_until(
        lambda: not jobs.exclude(state__in=["completed", "failed"]).exists(),
        timeout=120,
        what="every job ending",
    )
    took = time.monotonic() - started
    done = {(job.mode, job.provider, job.source): job for job in Job.objects.all()}
    # What each video lasts: a dialog the longer clip, a dub its audio.
    seconds = {
        ("dialog", "joypix", "api"): 2.0,
        ("dialog", "joypix", "studio"): 2.0,
        ("dialog", "lipsync_studio", "api"): 2.0,
        ("talking_photo", "joypix", "api"): 1.5,
        ("talking_photo", "lipsync_studio", "api"): 2.0,
        ("video_dub", "lipsync_studio", "api"): 1.5,
    }
    assert sorted(done) == sorted(seconds)
    for kind, job in done.items():
        assert job.state == "completed", (job.mode, job.provider, job.error, studio.tails())
        # Archived: the video is in storage, measured, and charged no more than held.
        assert job.output and default_storage.exists(job.output.name)
        assert default_storage.size(job.output.name) > 1000
        assert job.output_seconds == pytest.approx(seconds[kind], abs=0.3), kind
        assert 0 < job.credits_charged <= job.credits_held
        kinds = list(
            LedgerEntry.objects.filter(job=job).order_by("pk").values_list("kind", flat=True)
        )
        assert kinds[0] == "hold" and "capture" in kinds, kinds

    # The API answers completed with a link that plays (Range, as a player seeks).
    http = member.api()
    for name, job_id in api_jobs.items():
        if name.endswith("JoyPix"):
            answer = http.get(f"{studio.web_url}/v1/tasks/{job_id}", timeout=10).json()["data"]
            status, link = answer["status"], answer["video_url"]
        else:
            answer = http.get(f"{studio.web_url}/api/v1/jobs/{job_id}", timeout=10).json()
            status, link = answer["status"], answer["output"]
        assert status == "completed", (name, answer)
        head = http.get(link, headers={"Range": "bytes=0-11"}, timeout=10)
        assert head.status_code == 206 and head.content[4:8] == b"ftyp", name

    # Every hold resolved, the ledger consistent.
    for pool in (Pool.API, Pool.STUDIO):
        assert credits_balances(user=member.user)[pool].held == 0
    assert "Ledger OK" in ledger_check()

    # Each job reached the provider once: six submissions, six distinct tasks.
    stats = sandbox_stats(studio)
    assert sum(stats["submissions"].values()) == 6, stats
    assert stats["tasks"] == {"completed": 6}, stats
    assert len({job.provider_task_id for job in done.values()}) == 6

    # No schedule exists: the poll loop ran because the submissions kicked it.
    assert not Schedule.objects.exists()
    assert Task.objects.filter(func="jobs.tasks.poll_due", success=True).exists()
    # ...and the broker is drained: every task taken and acknowledged.
    studio.wait_until(
        lambda: broker.queue_size() == 0 and not OrmQ.objects.exists(),
        timeout=30,
        what="the broker drained",
    )
    assert Task.objects.filter(func="jobs.tasks.submit_job", success=True).count() == 6
    print(f"\n6 jobs of every mode ended {took:.1f} s after the node started")
