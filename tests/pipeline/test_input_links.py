"""Signed input links (jobs/pipeline/inputs.py and the view providers fetch
them through): a fresh link serves the file; one past INPUT_LINK_MAX_AGE, one
whose token was changed, and one for a job that ended answer 404."""

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.models import Job, JobInput, JobState
from jobs.pipeline import inputs
from jobs.pipeline.inputs import input_from_token, input_link

pytestmark = pytest.mark.django_db

BASE = "https://studio.example"
CONTENT = b"\xff\xd8 a photo " * 8


@pytest.fixture
def photo(alice, settings, tmp_path) -> JobInput:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = BASE
    job = Job.objects.create(
        owner=alice,
        mode="talking_photo",
        provider="joypix",
        provider_model="m",
        resolution="480p",
        state=JobState.SUBMITTING,
    )
    return JobInput.objects.create(
        job=job,
        role="image",
        file=default_storage.save("inputs/face.jpg", ContentFile(CONTENT)),
        original_name="face.jpg",
        content_type="image/jpeg",
        size=len(CONTENT),
    )


def fetch(client, link: str):
    assert link.startswith(BASE + "/")
    return client.get(link.removeprefix(BASE))


def made_ago(inp: JobInput, seconds: float, monkeypatch) -> str:
    """The link as input_link made it `seconds` ago (the token holds the time)."""
    then = time.time() - seconds
    with monkeypatch.context() as m:
        m.setattr(signing.time, "time", lambda: then)
        return input_link(inp)


def test_a_fresh_link_serves_the_file(client, photo):
    response = fetch(client, input_link(photo))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CONTENT
    assert response["Content-Type"] == "image/jpeg"


def test_a_link_past_its_max_age_answers_404(client, photo, settings, monkeypatch):
    settings.INPUT_LINK_MAX_AGE = 3600
    young = made_ago(photo, 3600 - 60, monkeypatch)
    old = made_ago(photo, 3600 + 60, monkeypatch)

    assert input_from_token(token_of(young)) == photo
    assert fetch(client, young).status_code == 200
    assert input_from_token(token_of(old)) is None
    assert fetch(client, old).status_code == 404


def token_of(link: str) -> str:
    return link.rsplit("/", 2)[-2]


def tampered(token: str) -> list[str]:
    """The token with its payload, its timestamp or its signature changed."""
    payload, stamp, signature = token.rsplit(":", 2)
    flip = {"A": "B"}
    return [
        f"{payload}x:{stamp}:{signature}",
        f"{payload}:{stamp[:-1]}{'0' if stamp[-1] != '0' else '1'}:{signature}",
        f"{payload}:{stamp}:{signature[:-1]}{flip.get(signature[-1], 'A')}",
        signing.dumps(photo_pk_plus_one(token), salt=inputs._SALT + "x", compress=True),
    ]


def photo_pk_plus_one(token: str) -> int:
    return signing.loads(token, salt=inputs._SALT) + 1


def test_a_tampered_token_answers_404(client, photo):
    link = input_link(photo)
    token = token_of(link)
    name = link.rsplit("/", 1)[-1]
    assert fetch(client, link).status_code == 200  # the link as made works

    for bad in tampered(token):
        assert input_from_token(bad) is None, bad
        assert fetch(client, f"{BASE}/inputs/{bad}/{name}").status_code == 404, bad


def test_another_inputs_token_does_not_open_this_file_by_name(client, photo):
    other = JobInput.objects.create(
        job=photo.job,
        role="audio",
        file=default_storage.save("inputs/voice.mp3", ContentFile(b"ID3 voice")),
        original_name="voice.mp3",
        content_type="audio/mpeg",
        size=9,
    )
    token = token_of(input_link(other))
    name = input_link(photo).rsplit("/", 1)[-1]
    assert fetch(client, f"{BASE}/inputs/{token}/{name}").status_code == 404


def test_a_link_stops_working_when_its_job_ends(client, photo):
    link = input_link(photo)
    assert fetch(client, link).status_code == 200
    Job.objects.filter(pk=photo.job_id).update(
        state=JobState.FAILED, finished_at=photo.job.created_at + timedelta(minutes=1)
    )
    assert fetch(client, link).status_code == 404
