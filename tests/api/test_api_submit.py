"""Submitting through the lipsync.studio contract: URL and multipart inputs,
checked like uploads, errors naming the field, and credits from the API
pool only."""

import uuid

import pytest

from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import EntryKind, Job, LedgerEntry, Pool, Upload
from jobs.pipeline import lifecycle

from .conftest import ApiClient

pytestmark = pytest.mark.django_db


def _photo_body(server, **form):
    return {
        "formState": {"image": server.link("face.png"), "audio": server.link("voice.mp3")} | form
    }


def test_a_talking_photo_by_url_is_queued_on_the_api_pool(api, alice, media_server, no_submit):
    response = api.post("/api/v1/lipsync-image", _photo_body(media_server, resolution="720p"))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "processing"
    job = Job.objects.get(uuid=uuid.UUID(answer["id"]))
    assert answer == {"id": str(job.uuid), "status": "processing"}
    assert (job.mode, job.provider, job.resolution) == ("talking_photo", "lipsync_studio", "720p")
    assert (job.source, job.pool, job.api_key.name) == ("api", "api", "render script")
    # 3 s of audio at 720p: the 5 s minimum at 4 credits a second.
    assert job.credits_held == 20
    balances = credits_balances(user=alice)
    assert (balances[Pool.API].held, balances[Pool.STUDIO].held) == (20, 0)
    assert {i.role for i in job.inputs.all()} == {"image", "audio"}
    assert job.state == "queued"


def test_the_same_fields_as_multipart_uploads(api, media_files, no_submit):
    with open(media_files["face.png"], "rb") as image, open(media_files["voice.mp3"], "rb") as a:
        response = api.post_multipart(
            "/api/v1/lipsync-image", {"image": image, "formState[audio]": a, "seed": "42"}
        )
    assert response.status_code == 200, response.content
    job = Job.objects.get(uuid=response.json()["id"])
    assert (job.seed, job.pool) == (42, "api")
    assert job.inputs.get(role="audio").duration == pytest.approx(3.0, abs=0.1)


def test_a_dub_with_a_mask_and_a_dialog_with_an_order(api, media_server, no_submit):
    dub = api.post(
        "/api/v1/lipsync-video",
        {
            "formState": {
                "video": media_server.link("clip.mp4"),
                "audio": media_server.link("voice.mp3"),
                "mask_image": media_server.link("face.png"),
            }
        },
    )
    assert dub.status_code == 200, dub.content
    job = Job.objects.get(uuid=dub.json()["id"])
    assert {i.role for i in job.inputs.all()} == {"video", "audio", "mask"}
    dialog = api.post(
        "/api/v1/lipsync-image-multi",
        {
            "formState": {
                "image": media_server.link("face.png"),
                "left_audio": media_server.link("voice.mp3"),
                "right_audio": media_server.link("other.wav"),
                "order": "sequential",
            }
        },
    )
    assert dialog.status_code == 200, dialog.content
    job = Job.objects.get(uuid=dialog.json()["id"])
    # Taking turns, which only lipsync.studio does (so it is chosen): both
    # clips billed, 3 s + 7 s at 2 credits a second.
    assert (job.provider, job.dialog_order, job.credits_held) == (
        "lipsync_studio",
        "sequential",
        20,
    )


def test_a_dialog_order_joypix_cannot_play_is_refused_on_it(api, media_server, no_submit):
    body = {
        "formState": {
            "image": media_server.link("face.png"),
            "left_audio": media_server.link("voice.mp3"),
            "right_audio": media_server.link("other.wav"),
            "order": "sequential",
            "provider": "joypix",
        }
    }
    response = api.post("/api/v1/lipsync-image-multi", body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "formState.order"
    assert not Job.objects.exists()


def test_a_dialog_goes_to_the_studios_first_provider_by_default(api, media_server, no_submit):
    response = api.post(
        "/api/v1/lipsync-image-multi",
        {
            "formState": {
                "image": media_server.link("face.png"),
                "left_audio": media_server.link("voice.mp3"),
                "right_audio": media_server.link("other.wav"),
            }
        },
    )
    assert response.status_code == 200, response.content
    assert Job.objects.get(uuid=response.json()["id"]).provider == "joypix"


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"image": None}, "formState.image", "required"),
        ({"audio": "notes.txt"}, "formState.audio", ""),
        ({"image": "notes.txt"}, "formState.image", ""),
        ({"image": "missing.png"}, "formState.image", "HTTP 404"),
        ({"image": "ftp://example.com/face.png"}, "formState.image", "http"),
        ({"resolution": "1080p"}, "formState.resolution", ""),
        ({"seed": "many"}, "formState.seed", ""),
        ({"provider": "acme"}, "formState.provider", "lipsync_studio, joypix"),
    ],
)
def test_refusals_name_their_field_and_keep_nothing(
    api, alice, media_server, no_submit, form, field, words
):
    body = _photo_body(media_server)
    for name, value in form.items():
        if value is None:
            body["formState"].pop(name)
        elif isinstance(value, str) and value.endswith((".txt", ".png")) and "://" not in value:
            body["formState"][name] = media_server.link(value)
        else:
            body["formState"][name] = value
    response = api.post("/api/v1/lipsync-image", body)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]
    assert not Job.objects.exists()
    assert not Upload.objects.exists()
    assert credits_balances(user=alice)[Pool.API].held == 0


def test_a_file_that_is_not_audio_is_refused_as_the_studio_refuses_it(
    api, media_server, media_files, no_submit
):
    """The same decoders and the same words as the Studio's upload."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobs.files.media import MediaError
    from jobs.studio.uploads import upload_stage

    text = media_files["notes.txt"].read_bytes()
    with pytest.raises(MediaError) as studio:
        upload_stage(owner=api_owner(api), kind="audio", uploaded=SimpleUploadedFile("a", text))
    body = _photo_body(media_server, audio=media_server.link("notes.txt"))
    error = api.post("/api/v1/lipsync-image", body).json()["error"]
    assert error["message"] == str(studio.value)


def api_owner(api):
    from jobs.models import ApiKey

    return ApiKey.objects.get(prefix=api.raw.split("_")[1]).owner


def test_not_json_and_not_an_object_are_refused(api):
    response = api.client.post(
        "/api/v1/lipsync-image",
        data="{nope",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.raw}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert api.post("/api/v1/lipsync-image", [1, 2]).status_code == 422
    response = api.client.post(
        "/api/v1/lipsync-image",
        data="x",
        content_type="text/plain",
        headers={"Authorization": f"Bearer {api.raw}"},
    )
    assert response.status_code == 415


def test_short_of_api_credits_is_402_with_needed_and_available(alice_key, media_server, no_submit):
    key, raw = alice_key
    credits_grant(user=key.owner, pool=Pool.API, amount=7, key="grant:small")
    credits_grant(user=key.owner, pool=Pool.STUDIO, amount=1000, key="grant:studio")
    response = ApiClient(raw).post("/api/v1/lipsync-image", _photo_body(media_server))
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["code"], error["needed"], error["available"]) == ("insufficient_credits", 10, 7)
    # The studio's credits were there, and were not touched.
    assert credits_balances(user=key.owner)[Pool.STUDIO].held == 0
    assert not Job.objects.exists() and not Upload.objects.exists()


def test_studio_jobs_never_touch_api_credits(alice, media_files, no_submit):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobs.studio.uploads import upload_stage

    credits_grant(user=alice, pool=Pool.API, amount=1000, key="grant:api")
    files = {
        role: upload_stage(
            owner=alice,
            kind=kind,
            uploaded=SimpleUploadedFile(name, media_files[name].read_bytes()),
        )
        for role, kind, name in (("image", "image", "face.png"), ("audio", "audio", "voice.mp3"))
    }
    with pytest.raises(Exception, match="Not enough studio credits"):
        lifecycle.job_create(
            owner=alice,
            mode="talking_photo",
            provider="lipsync_studio",
            resolution="480p",
            files=files,
        )
    assert credits_balances(user=alice)[Pool.API].held == 0


def test_a_retry_of_an_api_job_spends_api_credits(api, alice, media_server, no_submit):
    job = Job.objects.get(
        uuid=api.post("/api/v1/lipsync-image", _photo_body(media_server)).json()["id"]
    )
    lifecycle.job_fail(job, message="The provider refused it.")
    again = lifecycle.job_retry(Job.objects.get(pk=job.pk))
    assert again.pool == "api"
    hold = LedgerEntry.objects.get(job=again, kind=EntryKind.HOLD)
    assert hold.account.pool == "api"
    assert credits_balances(user=alice)[Pool.STUDIO].held == 0


def test_a_body_over_the_limit_is_413_before_it_is_read(api, settings):
    settings.MAX_UPLOAD_MB = 1
    response = api.client.post(
        "/api/v1/lipsync-image",
        data=b"x",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.raw}"},
        CONTENT_LENGTH=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    big = api.client.post(
        "/api/v1/lipsync-image",
        data=b"x",
        content_type="multipart/form-data; boundary=xyz",
        headers={"Authorization": f"Bearer {api.raw}"},
        CONTENT_LENGTH=str(3 * 1024 * 1024 + settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
    )
    assert big.status_code == 413


def test_an_uploaded_file_over_the_limit_is_refused_with_its_size(api, settings, no_submit):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MAX_UPLOAD_MB = 1
    blob = SimpleUploadedFile("big.png", b"\0" * (1024 * 1024 + 300_000))
    response = api.post_multipart("/api/v1/lipsync-image", {"image": blob, "audio": "x"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "formState.image"
    assert error["message"] == "This file is 1.3 MB; the limit is 1 MB."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"formState": "x"}, "formState"),
        ({}, "formState"),
        ({"formState": {"image": 5, "audio": "x"}}, "formState.image"),
        ({"formState": {"image": "x", "audio": "y", "seed": 2**40}}, "formState.seed"),
        ({"formState": {"image": "x", "audio": "y"}, "webhook": "javascript:alert(1)"}, "webhook"),
        ({"formState": {"image": "x", "audio": "y"}, "webhook": 3}, "webhook"),
    ],
)
def test_malformed_bodies_are_422_on_their_field(api, no_submit, body, field):
    response = api.post("/api/v1/lipsync-image", body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"].startswith(field)
    assert not Job.objects.exists()


def test_an_idempotency_key_too_long_is_refused(api, no_submit):
    response = api.post(
        "/api/v1/lipsync-image", {"formState": {}}, headers={"Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Idempotency-Key"
