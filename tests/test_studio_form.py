"""The Studio's new-job form over HTTP: files are decoded before they are
kept, a bad one gets its message on its own field while the good ones stay,
the exact cost appears as soon as the audio is known, and a refused job leaves
no job, hold or file behind."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.ledger import credits_balances, credits_grant
from jobs.models import Job, LedgerEntry, Upload
from tests.media_factory import (
    make_audio,
    make_image,
    make_image_bomb,
    make_text_file,
    make_truncated,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    whole = make_audio(d / "whole.mp3", 10.0)
    return {
        "photo": make_image(d / "photo.jpg", 640, 480, fmt="jpeg"),
        "left": make_audio(d / "left.mp3", 3.2),
        "right": make_audio(d / "right.mp3", 6.1),
        "text": make_text_file(d / "notes.mp3"),
        "truncated": make_truncated(whole, d / "cut.mp3", whole.stat().st_size // 2),
        "bomb": make_image_bomb(d / "bomb.png"),
    }


@pytest.fixture(scope="session")
def eleven_minutes(tmp_path_factory):
    return make_audio(tmp_path_factory.mktemp("long") / "long.mp3", 660, sample_rate=8000)


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    credits_grant(user=alice, pool="studio", amount=100, key="test:alice:100")
    return client


def upload(client, role: str, path: Path, **extra):
    with open(path, "rb") as fh:
        data = {"mode": "dialog", role: SimpleUploadedFile(path.name, fh.read()), **extra}
    return client.post(reverse("studio_upload", args=[role]), data, HTTP_HX_REQUEST="true")


def staged_id(response, role: str) -> str:
    match = re.search(rf'name="{role}_upload" value="(\d+)"', response.content.decode())
    assert match, response.content.decode()
    return match.group(1)


def field_html(response, role: str) -> str:
    html = response.content.decode()
    start = html.index(f'id="field-{role}"')
    return html[start : html.index("</div>\n", html.index("field-help", start))]


def stored_files(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).exists() else []


# --- one file at a time -----------------------------------------------------------------


def test_a_good_photo_is_kept_and_described(client_alice, files, media_root):
    response = upload(client_alice, "image", files["photo"])

    assert response.status_code == 200
    html = field_html(response, "image")
    assert "photo.jpg" in html and "640×480" in html
    assert Upload.objects.get(pk=staged_id(response, "image")).kind == "image"


@pytest.mark.parametrize(
    ("role", "key", "message"),
    [
        ("left_audio", "text", "not an audio file we can read"),
        ("right_audio", "truncated", "cut short"),
        ("image", "bomb", "pixels"),
    ],
)
def test_a_bad_file_gets_its_message_on_its_own_field_and_is_not_kept(
    client_alice, files, media_root, role, key, message
):
    response = upload(client_alice, role, files[key])

    assert response.status_code == 200
    html = field_html(response, role)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert f'name="{role}_upload"' not in html
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_an_eleven_minute_clip_is_refused_with_its_length(client_alice, eleven_minutes, media_root):
    response = upload(client_alice, "left_audio", eleven_minutes)

    html = field_html(response, "left_audio")
    assert "11:00" in html and "10:00" in html
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_a_file_for_another_kind_of_job_is_refused(client_alice, files, media_root):
    response = upload(client_alice, "video", files["photo"])

    assert response.status_code == 400
    assert not Upload.objects.exists()


def test_the_exact_cost_comes_with_the_second_clip(client_alice, files, media_root):
    left = staged_id(upload(client_alice, "left_audio", files["left"]), "left_audio")
    first = upload(client_alice, "image", files["photo"])
    assert "Add both audio clips to see the exact cost." in first.content.decode()

    response = upload(client_alice, "right_audio", files["right"], left_audio_upload=left)

    html = response.content.decode()
    assert 'id="quote" aria-live="polite" hx-swap-oob="true"' in html
    # 6.1 s (the longer clip) -> two 5 s units at 15 credits (480p) = 30 credits, $0.30.
    assert "30 credits" in html and "$0.30" in html
    assert "2 × 5 s = 10 s billed" in html
    assert "You have 100 credits available" in html


def test_the_quote_follows_the_resolution(client_alice, files, media_root):
    left = staged_id(upload(client_alice, "left_audio", files["left"]), "left_audio")
    right = staged_id(upload(client_alice, "right_audio", files["right"]), "right_audio")
    data = {
        "mode": "dialog",
        "provider": "joypix",
        "left_audio_upload": left,
        "right_audio_upload": right,
    }

    at_720 = client_alice.post(reverse("studio_quote"), data | {"resolution": "720p"})

    assert "60 credits" in at_720.content.decode() and "$0.60" in at_720.content.decode()


def test_a_quote_says_plainly_when_credits_are_short(client, bob, files, media_root):
    client.force_login(bob)
    credits_grant(user=bob, pool="studio", amount=20, key="test:bob:20")
    left = staged_id(upload(client, "left_audio", files["left"]), "left_audio")
    right = staged_id(upload(client, "right_audio", files["right"]), "right_audio")

    html = client.post(
        reverse("studio_quote"),
        {"mode": "dialog", "provider": "joypix", "resolution": "480p"}
        | {"left_audio_upload": left, "right_audio_upload": right},
    ).content.decode()

    assert "Not enough studio credits: this needs 30, you have 20 available." in html


# --- submitting ---------------------------------------------------------------------


def stage_all(client, files) -> dict:
    return {
        "image_upload": staged_id(upload(client, "image", files["photo"]), "image"),
        "left_audio_upload": staged_id(upload(client, "left_audio", files["left"]), "left_audio"),
        "right_audio_upload": staged_id(
            upload(client, "right_audio", files["right"]), "right_audio"
        ),
    }


def form_data(**extra) -> dict:
    return {
        "mode": "dialog",
        "provider": "joypix",
        "resolution": "480p",
        "prompt": "the left man speaks happily",
        "seed": "42",
    } | extra


def test_submitting_holds_the_credits_and_queues_the_job(
    client_alice, alice, files, media_root, django_capture_on_commit_callbacks
):
    staged = stage_all(client_alice, files)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_alice.post(
            reverse("job_new"), form_data(**staged), HTTP_HX_REQUEST="true"
        )

    job = Job.objects.get()
    assert (job.state, job.credits_held, job.seed, job.prompt) == (
        "queued",
        30,
        42,
        "the left man speaks happily",
    )
    assert sorted(job.inputs.values_list("role", flat=True)) == [
        "image",
        "left_audio",
        "right_audio",
    ]
    assert credits_balances(user=alice)["studio"].available == 70
    assert len(callbacks) == 1  # the submit task, enqueued once the job is committed
    html = response.content.decode()
    assert f"Job #{job.pk} is queued." in html
    # Its card comes through the page's poller (never replaced), asked for at once.
    assert response["HX-Trigger-After-Swap"] == '{"cards-poll": {}}'
    assert 'id="cards-poller"' not in html
    assert not Upload.objects.exists()  # the staged files now belong to the job


def test_not_enough_credits_leaves_no_job_no_hold_and_keeps_the_files(
    client, bob, files, media_root
):
    client.force_login(bob)
    credits_grant(user=bob, pool="studio", amount=20, key="test:bob:20")
    staged = stage_all(client, files)

    response = client.post(reverse("job_new"), form_data(**staged), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert "Not enough studio credits: this needs 30, and 20 are available." in html
    assert 'role="alert" id="new-job-errors"' in html
    assert not Job.objects.exists()
    assert not LedgerEntry.objects.filter(kind="hold").exists()
    # The member's files are still there for when credits arrive.
    for role, pk in staged.items():
        assert f'name="{role}" value="{pk}"' in html
    assert credits_balances(user=bob)["studio"].available == 20


def test_a_missing_file_is_named_on_its_field_and_the_others_and_options_stay(
    client_alice, files, media_root
):
    staged = stage_all(client_alice, files)
    del staged["right_audio_upload"]

    response = client_alice.post(reverse("job_new"), form_data(**staged), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert "Choose a file for “Right speaker&#x27;s audio”." in field_html(response, "right_audio")
    assert f'name="image_upload" value="{staged["image_upload"]}"' in html
    assert f'name="left_audio_upload" value="{staged["left_audio_upload"]}"' in html
    assert "the left man speaks happily" in html and 'value="42"' in html
    assert not Job.objects.exists() and not LedgerEntry.objects.filter(kind="hold").exists()


def test_without_javascript_the_whole_form_posts_its_files_and_a_bad_one_keeps_the_rest(
    client_alice, files, media_root
):
    def attach(path):
        return SimpleUploadedFile(path.name, path.read_bytes())

    data = form_data(
        image=attach(files["photo"]),
        left_audio=attach(files["text"]),
        right_audio=attach(files["right"]),
    )
    response = client_alice.post(reverse("job_new"), data)

    assert response.status_code == 400
    assert "not an audio file we can read" in field_html(response, "left_audio")
    assert not Job.objects.exists()
    # The good files are kept as staged uploads, named in the re-shown form.
    html = response.content.decode()
    kept = Upload.objects.order_by("kind").values_list("kind", flat=True)
    assert list(kept) == ["audio", "image"]
    assert 'name="image_upload"' in html and 'name="right_audio_upload"' in html

    data = form_data(
        left_audio=attach(files["left"]),
        image_upload=staged_id(response, "image"),
        right_audio_upload=staged_id(response, "right_audio"),
    )
    response = client_alice.post(reverse("job_new"), data)
    assert response.status_code == 302
    assert Job.objects.get().credits_held == 30


def test_someone_elses_staged_upload_cannot_be_used(client, alice, bob, files, media_root):
    client.force_login(alice)
    staged = stage_all(client, files)
    client.force_login(bob)
    credits_grant(user=bob, pool="studio", amount=100, key="test:bob:100")

    response = client.post(reverse("job_new"), form_data(**staged), HTTP_HX_REQUEST="true")

    assert "That upload has expired; choose the file again." in response.content.decode()
    assert not Job.objects.exists()


def test_a_seed_out_of_range_is_refused_on_its_field(client_alice, files, media_root):
    staged = stage_all(client_alice, files)

    response = client_alice.post(
        reverse("job_new"), form_data(seed="-5", **staged), HTTP_HX_REQUEST="true"
    )

    assert "greater than or equal to -1" in response.content.decode()
    assert not Job.objects.exists()


# --- the three kinds of video ------------------------------------------------------------


def test_switching_to_a_talking_photo_keeps_the_photo_and_the_options(
    client_alice, files, media_root
):
    image = staged_id(upload(client_alice, "image", files["photo"]), "image")
    left = staged_id(upload(client_alice, "left_audio", files["left"]), "left_audio")

    response = client_alice.get(
        reverse("studio_form"),
        {"mode": "talking_photo", "image_upload": image, "left_audio_upload": left}
        | {"resolution": "720p", "prompt": "smiles", "seed": "7"},
    )

    html = response.content.decode()
    assert "New talking photo" in html
    assert f'name="image_upload" value="{image}"' in html
    assert 'name="left_audio"' not in html and 'name="audio"' in html
    assert re.search(r'value="720p"[^>]*checked', html)
    assert "smiles" in html and 'value="7"' in html
    # Only lipsync.studio makes talking photos.
    assert '<option value="lipsync_studio" selected>lipsync.studio</option>' in html
    assert "joypix" not in html.split('name="provider"', 1)[1].split("</select>", 1)[0]


def test_a_talking_photo_is_billed_on_its_one_clip(client_alice, alice, files, media_root):
    image = staged_id(upload(client_alice, "image", files["photo"]), "image")
    audio_response = upload(client_alice, "audio", files["right"], mode="talking_photo")
    audio = staged_id(audio_response, "audio")
    assert "30 credits" in audio_response.content.decode()

    response = client_alice.post(
        reverse("job_new"),
        form_data(mode="talking_photo", provider="lipsync_studio", image_upload=image)
        | {"audio_upload": audio},
        HTTP_HX_REQUEST="true",
    )

    job = Job.objects.get()
    assert (job.mode, job.provider, job.provider_model, job.credits_held) == (
        "talking_photo",
        "lipsync_studio",
        "lipsync-image",
        30,
    )
    assert response.status_code == 200


def test_a_mode_posted_with_another_modes_fields_is_refused(client_alice, files, media_root):
    staged = stage_all(client_alice, files)

    response = client_alice.post(
        reverse("job_new"),
        form_data(mode="talking_photo", provider="lipsync_studio", **staged),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert "is not used by talking photo jobs; remove it." in html
    assert not Job.objects.exists()


def test_joypix_does_not_make_talking_photos(client_alice, files, media_root):
    image = staged_id(upload(client_alice, "image", files["photo"]), "image")
    audio = staged_id(upload(client_alice, "audio", files["right"], mode="talking_photo"), "audio")

    response = client_alice.post(
        reverse("job_new"),
        form_data(mode="talking_photo", provider="joypix", image_upload=image, audio_upload=audio),
        HTTP_HX_REQUEST="true",
    )

    assert "Select a valid choice" in response.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("role", "key", "message"),
    [
        ("video", "text", "not a video"),
        ("mask", "text", "not an image"),
    ],
)
def test_a_dub_refuses_a_video_or_mask_that_does_not_decode(
    client_alice, files, media_root, role, key, message
):
    response = upload(client_alice, role, files[key], mode="video_dub")

    html = field_html(response, role)
    assert message in html.lower()
    assert not Upload.objects.exists() and stored_files(media_root) == []


def test_a_dub_refuses_audio_over_ten_minutes(client_alice, eleven_minutes, media_root):
    response = upload(client_alice, "audio", eleven_minutes, mode="video_dub")

    assert "11:00" in field_html(response, "audio")
    assert not Upload.objects.exists() and stored_files(media_root) == []
