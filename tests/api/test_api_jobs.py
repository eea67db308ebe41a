"""Reading jobs: status as the contract shows it, the signed output link,
the caller's list, cancel, quote; another member's job is 404."""

import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from jobs.credits.ledger import credits_balances
from jobs.models import Job, Pool
from jobs.pipeline import lifecycle

pytestmark = pytest.mark.django_db

KEYS = {"id", "model", "status", "output", "error", "executionTime", "timings"}


@pytest.fixture
def job(api, media_server, no_submit):
    body = {
        "formState": {
            "image": media_server.link("face.png"),
            "audio": media_server.link("voice.mp3"),
        }
    }
    return Job.objects.get(uuid=api.post("/api/v1/lipsync-image", body).json()["id"])


def _complete(job, settings, tmp_path, data=b"\x00\x00\x00\x18ftypmp42" + b"v" * 1000):
    settings.MEDIA_ROOT = tmp_path
    name = default_storage.save(f"outputs/job-{job.pk}.mp4", ContentFile(data))
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        state="completed",
        output=name,
        submitted_at=now - timedelta(seconds=12.345),
        finished_at=now,
    )
    return Job.objects.get(pk=job.pk)


# What the database requires of a job in each state (migration 0013).
LEFT_IN = {
    "queued": {},
    "submitting": {},
    "processing": {"provider_task_id": "task-1"},
    "archiving": {"provider_task_id": "task-1", "output_url": "https://cdn.example/out.mp4"},
}


def test_a_job_is_processing_until_archived(api, job):
    for state in ("queued", "submitting", "processing", "archiving"):
        Job.objects.filter(pk=job.pk).update(state=state, **LEFT_IN[state])
        answer = api.get(f"/api/v1/jobs/{job.uuid}").json()
        assert set(answer) == KEYS
        assert answer == {
            "id": str(job.uuid),
            "model": "lipsync-image",
            "status": "processing",
            "output": None,
            "error": "",
            "executionTime": None,
            "timings": None,
        }


def test_a_completed_job_links_its_video_signed_and_seekable(api, job, settings, tmp_path):
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    _complete(job, settings, tmp_path, data)
    answer = api.get(f"/api/v1/jobs/{job.uuid}").json()
    assert answer["status"] == "completed"
    assert 12000 <= answer["executionTime"] <= 13000
    link = answer["output"]
    assert link.startswith(settings.PUBLIC_BASE_URL + "/api/v1/outputs/")
    path = link.removeprefix(settings.PUBLIC_BASE_URL)
    anonymous = Client()
    whole = anonymous.get(path)
    assert whole.status_code == 200
    assert b"".join(whole.streaming_content) == data
    part = anonymous.get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == data[10:20]
    # A forged or altered token is refused, as JSON.
    forged = anonymous.get(path.replace("/outputs/", "/outputs/x"))
    assert forged.status_code == 404
    assert forged.json()["error"]["code"] == "not_found"


def test_an_output_link_expires(api, job, settings, tmp_path):
    _complete(job, settings, tmp_path)
    link = api.get(f"/api/v1/jobs/{job.uuid}").json()["output"]
    path = link.removeprefix(settings.PUBLIC_BASE_URL)
    assert Client().get(path).status_code == 200
    settings.API_OUTPUT_LINK_MAX_AGE = -1
    assert Client().get(path).status_code == 404


def test_a_failed_job_says_why(api, job):
    lifecycle.job_fail(job, message="The provider refused this job: bad face.")
    answer = api.get(f"/api/v1/jobs/{job.uuid}").json()
    assert (answer["status"], answer["error"], answer["output"]) == (
        "failed",
        "The provider refused this job: bad face.",
        None,
    )


def test_another_members_job_is_404_everywhere(api, bob_api, job):
    assert api.get(f"/api/v1/jobs/{job.uuid}").status_code == 200
    for response in (
        bob_api.get(f"/api/v1/jobs/{job.uuid}"),
        bob_api.post(f"/api/v1/jobs/{job.uuid}/cancel"),
        bob_api.get(f"/api/v1/jobs/{uuid.uuid4()}"),
        bob_api.get("/api/v1/jobs/not-a-uuid"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert bob_api.get("/v1/tasks/" + str(job.uuid)).json()["code"] == 404
    assert Job.objects.get(pk=job.pk).state == "queued"
    assert bob_api.get("/api/v1/jobs").json()["jobs"] == []


def test_cancel_while_queued_gives_the_credits_back_then_409(api, alice, job):
    assert credits_balances(user=alice)[Pool.API].held == 10
    response = api.post(f"/api/v1/jobs/{job.uuid}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert credits_balances(user=alice)[Pool.API].held == 0
    again = api.post(f"/api/v1/jobs/{job.uuid}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_cancellable"


def test_a_job_already_sent_cannot_be_cancelled(api, job):
    Job.objects.filter(pk=job.pk).update(state="processing", provider_task_id="task-1")
    response = api.post(f"/api/v1/jobs/{job.uuid}/cancel")
    assert response.status_code == 409
    assert Job.objects.get(pk=job.pk).state == "processing"


def test_the_list_is_newest_first_filtered_and_paged(api, media_server, no_submit):
    body = {
        "formState": {
            "image": media_server.link("face.png"),
            "audio": media_server.link("voice.mp3"),
        }
    }
    ids = [api.post("/api/v1/lipsync-image", body).json()["id"] for _ in range(5)]
    Job.objects.filter(uuid=ids[0]).update(state="failed", finished_at=timezone.now())
    first = api.get("/api/v1/jobs", limit=2).json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    assert first["jobs"][0]["source"] == "api" and first["jobs"][0]["pool"] == "api"
    second = api.get("/api/v1/jobs", limit=2, cursor=first["next_cursor"]).json()
    third = api.get("/api/v1/jobs", limit=2, cursor=second["next_cursor"]).json()
    assert [j["id"] for j in second["jobs"] + third["jobs"]] == ids[::-1][2:]
    assert third["next_cursor"] is None
    failed = api.get("/api/v1/jobs", status="failed").json()["jobs"]
    assert [j["id"] for j in failed] == [ids[0]]
    assert len(api.get("/api/v1/jobs", mode="lipsync-image").json()["jobs"]) == 5
    assert api.get("/api/v1/jobs", mode="dialog").json()["jobs"] == []
    for params, field in (
        ({"status": "done"}, "status"),
        ({"mode": "opera"}, "mode"),
        ({"cursor": "!!"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
    ):
        response = api.get("/api/v1/jobs", **params)
        assert response.status_code == 422, params
        assert response.json()["error"]["field"] == field


def test_a_quote_by_seconds_or_by_files_creates_nothing(api, alice, media_server):
    by_seconds = api.post(
        "/api/v1/quote",
        {"model": "lipsync-image", "seconds": 12.3, "formState": {"resolution": "720p"}},
    )
    assert by_seconds.status_code == 200, by_seconds.content
    answer = by_seconds.json()
    assert set(answer) == {
        "credits",
        "usd",
        "billed_seconds",
        "units",
        "available",
        "expected_seconds",
    }
    assert (answer["credits"], answer["billed_seconds"], answer["units"]) == (52, 13, 13)
    assert answer["usd"] == "0.52"
    assert answer["available"] == 500
    assert answer["expected_seconds"] > 0
    by_files = api.post(
        "/api/v1/quote",
        {
            "model": "motion-2-dialog",
            "formState": {
                "image_url": media_server.link("face.png"),
                "left_audio_url": media_server.link("voice.mp3"),
                "right_audio_url": media_server.link("other.wav"),
            },
        },
    ).json()
    # JoyPix, the longer clip (7 s): 2 units of 5 s at 15 credits.
    assert (by_files["credits"], by_files["billed_seconds"]) == (30, 10)
    from jobs.models import Upload

    assert not Job.objects.exists() and not Upload.objects.exists()
    assert credits_balances(user=alice)[Pool.API].held == 0
    bad = api.post("/api/v1/quote", {"model": "lipsync-image", "formState": {}})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "formState.image"
    assert api.post("/api/v1/quote", {"model": "opera"}).json()["error"]["field"] == "model"


def test_a_multipart_quote_measures_the_files_it_is_sent(api, media_files):
    with open(media_files["face.png"], "rb") as image, open(media_files["other.wav"], "rb") as a:
        response = api.post_multipart(
            "/api/v1/quote",
            {"model": "lipsync-image", "image": image, "audio": a, "resolution": "720p"},
        )
    assert response.status_code == 200, response.content
    # 7 s of audio at 720p, 4 credits a second.
    assert (response.json()["credits"], response.json()["billed_seconds"]) == (28, 7)
    from jobs.models import Upload

    assert not Upload.objects.exists()


def test_json_errors_keep_the_headers_that_explain_them(api, job, settings, tmp_path):
    wrong = api.client.delete("/api/v1/me", headers={"Authorization": f"Bearer {api.raw}"})
    assert wrong.status_code == 405 and "GET" in wrong["Allow"]
    _complete(job, settings, tmp_path)
    link = api.get(f"/api/v1/jobs/{job.uuid}").json()["output"]
    beyond = Client().get(
        link.removeprefix(settings.PUBLIC_BASE_URL), headers={"Range": "bytes=99999-"}
    )
    assert beyond.status_code == 416
    assert beyond.json()["error"]["code"] == "range_not_satisfiable"
    assert beyond["Content-Range"].startswith("bytes */")
