"""JoyPix's contract under /v1/: its body, its envelope, its statuses."""

import json

import pytest

from jobs.credits.ledger import credits_balances
from jobs.models import Job, Pool
from jobs.pipeline import lifecycle

pytestmark = pytest.mark.django_db


def _body(server, **extra):
    return {
        "left_audio_url": server.link("voice.mp3"),
        "right_audio_url": server.link("other.wav"),
        "image_url": server.link("face.png"),
        "resolution": "480p",
        "prompt": "the left man speak happily, the right woman has cheerful expressions.",
        "seed": -1,
    } | extra


def test_submit_answers_the_joypix_envelope_with_a_task_id(api, alice, media_server, no_submit):
    response = api.post("/v1/lip-sync/motion-2-dialog", _body(media_server))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["code"], answer["message"]) == (0, "success")
    job = Job.objects.get(uuid=answer["data"]["task_id"])
    assert (job.mode, job.provider, job.pool, job.source) == ("dialog", "joypix", "api", "api")
    assert job.prompt.startswith("the left man")
    # The longer clip, 7 s: 2 units of 5 s at 15 credits.
    assert credits_balances(user=alice)[Pool.API].held == 30


def test_task_status_follows_the_job(api, media_server, no_submit):
    task_id = api.post("/v1/lip-sync/motion-2-dialog", _body(media_server)).json()["data"][
        "task_id"
    ]
    answer = api.get(f"/v1/tasks/{task_id}").json()
    assert (answer["code"], answer["message"]) == (0, "success")
    data = answer["data"]
    assert set(data) == {"task_id", "inputs", "model", "status", "error", "video_url"}
    assert (data["task_id"], data["model"], data["status"]) == (
        task_id,
        "motion-2-dialog",
        "submitted",
    )
    assert json.loads(data["inputs"])["resolution"] == "480p"
    job = Job.objects.get(uuid=task_id)
    Job.objects.filter(pk=job.pk).update(state="processing", provider_task_id="task-1")
    assert api.get(f"/v1/tasks/{task_id}").json()["data"]["status"] == "processing"
    lifecycle.job_fail(job, message="The provider refused this job: no faces.")
    data = api.get(f"/v1/tasks/{task_id}").json()["data"]
    assert (data["status"], data["error"], data["video_url"]) == (
        "failed",
        "The provider refused this job: no faces.",
        "",
    )
    # The same job through the lipsync.studio contract.
    assert api.get(f"/api/v1/jobs/{task_id}").json()["status"] == "failed"


def test_joypix_errors_keep_its_envelope_and_name_the_field(api, media_server, no_submit):
    body = _body(media_server)
    del body["image_url"]
    response = api.post("/v1/lip-sync/motion-2-dialog", body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["code"] == 422 and answer["data"] is None
    assert answer["message"].startswith("image_url: ")
    refused = api.post(
        "/v1/lip-sync/motion-2-dialog", _body(media_server, provider="lipsync_studio", seed=5)
    )
    assert refused.status_code == 200  # either provider of dialogs can be asked for
    assert Job.objects.get(uuid=refused.json()["data"]["task_id"]).provider == "lipsync_studio"


def test_short_of_credits_in_the_joypix_envelope(alice_key, media_server, no_submit):
    from .conftest import ApiClient

    response = ApiClient(alice_key[1]).post("/v1/lip-sync/motion-2-dialog", _body(media_server))
    assert response.status_code == 402
    answer = response.json()
    assert answer["code"] == 402 and "needs 30" in answer["message"]


def test_motion_2_makes_a_talking_photo_on_the_studios_first_provider(
    api, alice, media_server, no_submit
):
    body = {
        "audio_url": media_server.link("voice.mp3"),
        "image_url": media_server.link("face.png"),
        "resolution": "720p",
        "prompt": "smiles",
        "seed": 7,
    }
    answer = api.post("/v1/lip-sync/motion-2", body).json()
    assert (answer["code"], answer["message"]) == (0, "success")
    job = Job.objects.get(uuid=answer["data"]["task_id"])
    # The Studio offers lipsync.studio first for a talking photo.
    assert (job.mode, job.provider, job.pool, job.seed) == (
        "talking_photo",
        "lipsync_studio",
        "api",
        7,
    )
    assert sorted(job.inputs.values_list("role", flat=True)) == ["audio", "image"]

    data = api.get(f"/v1/tasks/{job.uuid}").json()["data"]
    assert (data["model"], data["status"]) == ("motion-2", "submitted")

    on_joypix = api.post("/v1/lip-sync/motion-2", body | {"provider": "joypix"}).json()
    job = Job.objects.get(uuid=on_joypix["data"]["task_id"])
    assert (job.provider, job.provider_model) == ("joypix", "motion-2")
    assert credits_balances(user=alice)[Pool.API].held > 0
    assert credits_balances(user=alice)[Pool.STUDIO].held == 0


def test_motion_2_names_a_missing_field_in_the_joypix_envelope(api, media_server, no_submit):
    response = api.post("/v1/lip-sync/motion-2", {"image_url": media_server.link("face.png")})
    answer = response.json()
    assert response.status_code == 422
    assert answer["code"] == 422
    assert "audio_url" in answer["message"]
    assert not Job.objects.exists()
