"""The Studio's new-job form over HTTP: files are decoded before they are
kept, a bad one gets its message on its own field while the good ones stay,
the exact cost appears as soon as the audio is known, and a refused job leaves
no job, hold or file behind."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import Job, LedgerEntry, Upload, card_stamps
from tests.media_factory import (
    make_audio,
    make_image,
    make_image_bomb,
    make_text_file,
    make_truncated,
)

pytestmark = pytest.mark.django_db


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


def test_a_good_photo_is_kept_and_described(funded_alice_client, files, media_root):
    response = upload(funded_alice_client, "image", files["photo"])

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
    funded_alice_client, files, media_root, role, key, message
):
    response = upload(funded_alice_client, role, files[key])

    assert response.status_code == 200
    html = field_html(response, role)
    assert message in html
    assert 'aria-invalid="true"' in html
    assert f'name="{role}_upload"' not in html
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_an_eleven_minute_clip_is_refused_with_its_length(
    funded_alice_client, eleven_minutes, media_root
):
    response = upload(funded_alice_client, "left_audio", eleven_minutes)

    html = field_html(response, "left_audio")
    assert "11:00" in html and "10:00" in html
    assert not Upload.objects.exists()
    assert stored_files(media_root) == []


def test_a_file_for_another_kind_of_job_is_refused(funded_alice_client, files, media_root):
    response = upload(funded_alice_client, "video", files["photo"])

    assert response.status_code == 400
    assert not Upload.objects.exists()


def test_the_exact_cost_comes_with_the_second_clip(funded_alice_client, files, media_root):
    left = staged_id(upload(funded_alice_client, "left_audio", files["left"]), "left_audio")
    first = upload(funded_alice_client, "image", files["photo"])
    assert "Add both audio clips to see the exact cost." in first.content.decode()

    response = upload(funded_alice_client, "right_audio", files["right"], left_audio_upload=left)

    html = response.content.decode()
    assert 'id="quote" aria-live="polite" hx-swap-oob="true"' in html
    # 6.1 s (the longer clip) -> two 5 s units at 15 credits (480p) = 30 credits, $0.30.
    assert "30 credits" in html and "$0.30" in html
    assert "2 × 5 s = 10 s billed" in html
    assert "You have 100 credits available" in html


def test_the_quote_follows_the_resolution(funded_alice_client, files, media_root):
    left = staged_id(upload(funded_alice_client, "left_audio", files["left"]), "left_audio")
    right = staged_id(upload(funded_alice_client, "right_audio", files["right"]), "right_audio")
    data = {
        "mode": "dialog",
        "provider": "joypix",
        "left_audio_upload": left,
        "right_audio_upload": right,
    }

    at_720 = funded_alice_client.post(reverse("studio_quote"), data | {"resolution": "720p"})

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
    funded_alice_client, alice, files, media_root, django_capture_on_commit_callbacks
):
    staged = stage_all(funded_alice_client, files)

    with django_capture_on_commit_callbacks() as callbacks:
        response = funded_alice_client.post(
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
    # The submit task, enqueued once the job is committed (beside the card
    # stamp's bump, with Redis: jobs/models/card_stamps.py).
    tasks = [c for c in callbacks if getattr(c, "func", None) is not card_stamps._bump_now]
    assert len(tasks) == 1
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
    funded_alice_client, files, media_root
):
    staged = stage_all(funded_alice_client, files)
    del staged["right_audio_upload"]

    response = funded_alice_client.post(
        reverse("job_new"), form_data(**staged), HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert "Choose a file for “Right speaker&#x27;s audio”." in field_html(response, "right_audio")
    assert f'name="image_upload" value="{staged["image_upload"]}"' in html
    assert f'name="left_audio_upload" value="{staged["left_audio_upload"]}"' in html
    assert "the left man speaks happily" in html and 'value="42"' in html
    assert not Job.objects.exists() and not LedgerEntry.objects.filter(kind="hold").exists()


def test_without_javascript_the_whole_form_posts_its_files_and_a_bad_one_keeps_the_rest(
    funded_alice_client, files, media_root
):
    def attach(path):
        return SimpleUploadedFile(path.name, path.read_bytes())

    data = form_data(
        image=attach(files["photo"]),
        left_audio=attach(files["text"]),
        right_audio=attach(files["right"]),
    )
    response = funded_alice_client.post(reverse("job_new"), data)

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
    response = funded_alice_client.post(reverse("job_new"), data)
    assert response.status_code == 302
    assert Job.objects.get().credits_held == 30


def test_someone_elses_staged_upload_cannot_be_used(client, alice, bob, files, media_root):
    client.force_login(alice)
    staged = stage_all(client, files)
    client.force_login(bob)
    credits_grant(user=bob, pool="studio", amount=100, key="test:bob:100")

    response = client.post(reverse("job_new"), form_data(**staged), HTTP_HX_REQUEST="true")

    assert "That file is no longer kept here: it went into a job or expired." in (
        response.content.decode()
    )
    assert not Job.objects.exists()


def test_a_seed_out_of_range_is_refused_on_its_field(funded_alice_client, files, media_root):
    staged = stage_all(funded_alice_client, files)

    response = funded_alice_client.post(
        reverse("job_new"), form_data(seed="-5", **staged), HTTP_HX_REQUEST="true"
    )

    assert "greater than or equal to -1" in response.content.decode()
    assert not Job.objects.exists()


# --- the three kinds of video ------------------------------------------------------------


def test_switching_to_a_talking_photo_keeps_the_photo_and_the_options(
    funded_alice_client, files, media_root
):
    image = staged_id(upload(funded_alice_client, "image", files["photo"]), "image")
    left = staged_id(upload(funded_alice_client, "left_audio", files["left"]), "left_audio")

    response = funded_alice_client.get(
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
    # lipsync.studio stays the talking photo's default; JoyPix (motion-2) is offered too.
    select = html.split('name="provider"', 1)[1].split("</select>", 1)[0]
    assert '<option value="lipsync_studio" selected>lipsync.studio</option>' in select
    assert '<option value="joypix">JoyPix</option>' in select
    assert select.index("lipsync_studio") < select.index("joypix")


def test_switching_kind_opens_on_its_default_provider_unless_one_was_chosen(
    funded_alice_client, media_root
):
    def selected(params) -> str:
        html = funded_alice_client.get(reverse("studio_form"), params).content.decode()
        select = html.split('name="provider"', 1)[1].split("</select>", 1)[0]
        return re.search(r'<option value="(\w+)" selected>', select).group(1)

    # JoyPix was only the dialog's default: a talking photo opens on its own.
    assert selected({"mode": "talking_photo", "provider": "joypix", "from_mode": "dialog"}) == (
        "lipsync_studio"
    )
    # lipsync.studio chosen for a dialog stays chosen.
    chosen = {"mode": "talking_photo", "provider": "lipsync_studio", "from_mode": "dialog"}
    assert selected(chosen) == "lipsync_studio"
    # JoyPix chosen for a talking photo stays chosen for a dialog...
    assert selected({"mode": "dialog", "provider": "joypix", "from_mode": "talking_photo"}) == (
        "joypix"
    )
    # ...and lipsync.studio, the talking photo's default, gives way to the dialog's.
    default = {"mode": "dialog", "provider": "lipsync_studio", "from_mode": "talking_photo"}
    assert selected(default) == "joypix"


def test_a_talking_photo_is_billed_on_its_one_clip(funded_alice_client, alice, files, media_root):
    image = staged_id(upload(funded_alice_client, "image", files["photo"]), "image")
    audio_response = upload(funded_alice_client, "audio", files["right"], mode="talking_photo")
    audio = staged_id(audio_response, "audio")
    # lipsync.studio at 480p: 6.1 s -> 7 whole seconds at 2 credits a second.
    assert "14 credits" in audio_response.content.decode()

    response = funded_alice_client.post(
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
        14,
    )
    assert response.status_code == 200


def test_a_mode_posted_with_another_modes_fields_is_refused(funded_alice_client, files, media_root):
    staged = stage_all(funded_alice_client, files)

    response = funded_alice_client.post(
        reverse("job_new"),
        form_data(mode="talking_photo", provider="lipsync_studio", **staged),
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert "is not used by talking photo jobs; remove it." in html
    assert not Job.objects.exists()


def test_joypix_makes_talking_photos_at_its_assumed_motion_2_price(
    funded_alice_client, alice, files, media_root
):
    image = staged_id(upload(funded_alice_client, "image", files["photo"]), "image")
    audio_response = upload(
        funded_alice_client, "audio", files["right"], mode="talking_photo", provider="joypix"
    )
    audio = staged_id(audio_response, "audio")
    # JoyPix motion-2 at 480p (assumed motion-2-dialog's): 6.1 s -> 2 x 5 s at 15 credits.
    quoted = audio_response.content.decode()
    assert "30 credits" in quoted and "$0.30" in quoted
    assert "2 × 5 s = 10 s billed at 15 credits per 5 s." in quoted

    response = funded_alice_client.post(
        reverse("job_new"),
        form_data(mode="talking_photo", provider="joypix", image_upload=image, audio_upload=audio),
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.mode, job.provider, job.provider_model, job.credits_held) == (
        "talking_photo",
        "joypix",
        "motion-2",
        30,
    )
    assert credits_balances(user=alice)["studio"].available == 100 - 30


def test_joypix_does_not_make_video_dubs(funded_alice_client, files, media_root):
    page = funded_alice_client.get(reverse("studio_form"), {"mode": "video_dub"}).content.decode()
    assert "joypix" not in page.split('name="provider"', 1)[1].split("</select>", 1)[0]
    audio = staged_id(
        upload(funded_alice_client, "audio", files["right"], mode="video_dub"), "audio"
    )

    response = funded_alice_client.post(
        reverse("job_new"),
        form_data(mode="video_dub", provider="joypix", audio_upload=audio),
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
    funded_alice_client, files, media_root, role, key, message
):
    response = upload(funded_alice_client, role, files[key], mode="video_dub")

    html = field_html(response, role)
    assert message in html.lower()
    assert not Upload.objects.exists() and stored_files(media_root) == []


def test_a_dub_refuses_audio_over_ten_minutes(funded_alice_client, eleven_minutes, media_root):
    response = upload(funded_alice_client, "audio", eleven_minutes, mode="video_dub")

    assert "11:00" in field_html(response, "audio")
    assert not Upload.objects.exists() and stored_files(media_root) == []


# --- lipsync.studio: per second, and a dialog's speaking order --------------------------------

ORDER_CONTROL = '<input type="radio" name="dialog_order"'


def checked_order(html: str) -> str | None:
    """The value of the checked speaking-order radio, or None."""
    match = re.search(r'<input type="radio" name="dialog_order" value="(\w+)"[^>]*checked', html)
    return match.group(1) if match else None


def lipsync_dialog(staged: dict, **extra) -> dict:
    return form_data(provider="lipsync_studio", **staged) | extra


@pytest.mark.parametrize(
    ("order", "credits", "detail"),
    [
        (
            "meanwhile",
            14,
            "6.1 s of audio (the longer clip) → 7 s billed (rounded up to whole seconds) "
            "at 2 credits per second.",
        ),
        (
            "sequential",
            20,
            "9.3 s of audio (both clips, one after the other) → 10 s billed "
            "(rounded up to whole seconds) at 2 credits per second.",
        ),
    ],
    ids=["meanwhile", "sequential"],
)
def test_a_lipsync_dialog_is_quoted_and_held_for_its_speaking_order(
    funded_alice_client, alice, files, media_root, order, credits, detail
):
    """3.2 s and 6.1 s clips at 480p: at the same time the longer is billed
    (7 s), taking turns both (3.2 + 6.1 = 9.3 -> 10 s), at 2 credits a second."""
    staged = stage_all(funded_alice_client, files)

    quoted = funded_alice_client.post(
        reverse("studio_quote"), lipsync_dialog(staged, dialog_order=order)
    ).content.decode()

    assert f"{credits} credits" in quoted and f"${credits / 100:.2f}" in quoted
    assert f'<p class="quote-detail muted">{detail}</p>' in quoted

    funded_alice_client.post(
        reverse("job_new"), lipsync_dialog(staged, dialog_order=order), HTTP_HX_REQUEST="true"
    )

    job = Job.objects.get()
    assert (job.provider_model, job.dialog_order, job.credits_held) == (
        "lipsync-image-multi",
        order,
        credits,
    )
    assert (job.unit_seconds, job.min_seconds, job.credits_per_unit) == (1, 5, 2)
    assert credits_balances(user=alice)["studio"].available == 100 - credits
    # The card says how they speak.
    card = funded_alice_client.get(reverse("studio")).content.decode()
    label = "They take turns" if order == "sequential" else "They speak at the same time"
    assert f"<dt>Speakers</dt><dd>{label}</dd>" in card


def test_a_short_clip_is_quoted_at_the_five_second_minimum(
    funded_alice_client, tmp_path, media_root
):
    short = make_audio(tmp_path / "short.mp3", 3.0)
    audio = upload(funded_alice_client, "audio", short, mode="talking_photo", resolution="720p")

    html = audio.content.decode()
    assert "20 credits" in html and "$0.20" in html
    assert "3.0 s of audio → 5 s billed (the 5 s minimum) at 4 credits per second." in html


def test_the_order_control_is_offered_only_for_a_lipsync_dialog(
    funded_alice_client, files, media_root
):
    # A dialog opens on JoyPix, which takes no order.
    page = funded_alice_client.get(reverse("studio")).content.decode()
    assert '<div id="dialog-order"' in page and ORDER_CONTROL not in page

    staged = stage_all(funded_alice_client, files)
    chose_lipsync = funded_alice_client.post(
        reverse("studio_provider"), lipsync_dialog(staged), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "How do they speak?" in chose_lipsync
    assert checked_order(chose_lipsync) == "meanwhile"  # the default, checked
    # The cost comes along, out of band, for the order shown.
    assert 'id="quote" aria-live="polite" hx-swap-oob="true"' in chose_lipsync
    assert "14 credits" in chose_lipsync

    back_to_joypix = funded_alice_client.post(
        reverse("studio_provider"),
        form_data(dialog_order="sequential", **staged),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert '<div id="dialog-order"' in back_to_joypix and ORDER_CONTROL not in back_to_joypix
    assert "30 credits" in back_to_joypix  # JoyPix: the longer clip, 2 x 5 s at 15
    # The choice waits, hidden, for lipsync.studio to be chosen again.
    assert '<input type="hidden" name="dialog_order" value="sequential">' in back_to_joypix
    chose_lipsync_again = funded_alice_client.post(
        reverse("studio_provider"),
        lipsync_dialog(staged, dialog_order="sequential"),
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert checked_order(chose_lipsync_again) == "sequential"
    assert "20 credits" in chose_lipsync_again

    # lipsync.studio's talking photos have one speaker.
    talking = funded_alice_client.get(
        reverse("studio_form"), {"mode": "talking_photo", "provider": "lipsync_studio"}
    ).content.decode()
    assert ORDER_CONTROL not in talking


def test_the_chosen_order_survives_every_re_render(funded_alice_client, files, media_root):
    staged = stage_all(funded_alice_client, files)
    turns = lipsync_dialog(staged, dialog_order="sequential")

    # The provider's part re-rendered (e.g. lipsync.studio chosen again).
    provider = funded_alice_client.post(reverse("studio_provider"), turns, HTTP_HX_REQUEST="true")
    assert checked_order(provider.content.decode()) == "sequential"
    # A file chosen anew: its answer's cost is for the order on the page.
    again = upload(
        funded_alice_client,
        "right_audio",
        files["right"],
        provider="lipsync_studio",
        dialog_order="sequential",
        left_audio_upload=staged["left_audio_upload"],
    ).content.decode()
    assert "20 credits" in again and "(both clips, one after the other)" in again
    # Switching the kind of video and back.
    switched = funded_alice_client.get(reverse("studio_form"), turns).content.decode()
    assert checked_order(switched) == "sequential"
    # A form sent back with an error keeps it.
    refused = funded_alice_client.post(
        reverse("job_new"), turns | {"seed": "-5"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "greater than or equal to -1" in refused
    assert checked_order(refused) == "sequential"
    # And the fresh form after a job is made.
    made = funded_alice_client.post(
        reverse("job_new"), turns, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert Job.objects.get().dialog_order == "sequential"
    assert checked_order(made) == "sequential"


@pytest.mark.parametrize(
    ("order", "htmx"),
    [("together", True), ("", True), ("together", False)],
    ids=["unknown-htmx", "missing-htmx", "unknown-no-js"],
)
def test_a_lipsync_dialog_needs_a_known_order(funded_alice_client, files, media_root, order, htmx):
    staged = stage_all(funded_alice_client, files)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = funded_alice_client.post(
        reverse("job_new"), lipsync_dialog(staged, dialog_order=order), **headers
    )

    html = response.content.decode()
    assert response.status_code == (200 if htmx else 400)
    fieldset = html[html.index('<div id="dialog-order"') :]
    fieldset = fieldset[: fieldset.index("</fieldset>")]
    assert "field--invalid" in fieldset
    assert "Choose whether they take turns or speak at the same time." in fieldset
    assert not Job.objects.exists() and not LedgerEntry.objects.filter(kind="hold").exists()
    # The files stay staged for the next try.
    for role, pk in staged.items():
        assert f'name="{role}" value="{pk}"' in html


def test_joypix_takes_no_order_whatever_a_stale_page_sends(funded_alice_client, files, media_root):
    staged = stage_all(funded_alice_client, files)

    funded_alice_client.post(
        reverse("job_new"), form_data(dialog_order="sequential", **staged), HTTP_HX_REQUEST="true"
    )

    job = Job.objects.get()
    assert (job.provider, job.dialog_order, job.credits_held) == ("joypix", "", 30)


# --- file names ---------------------------------------------------------------------


def raw_upload(client, role: str, filename: str, content: bytes):
    """One file as a browser sends it, whatever its name (the test client's
    own files cut names to 255 characters before sending them)."""
    boundary = "----StudioFormBoundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="mode"\r\n\r\ndialog\r\n'
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{role}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.post(
        reverse("studio_upload", args=[role]),
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_HX_REQUEST="true",
    )


def test_a_long_file_name_is_kept_shortened_and_names_no_file_on_disk(
    funded_alice_client, files, media_root
):
    # 531 characters, 400 bytes of them an extension: too long for a name on disk.
    name = "two people " * 30 + "." + "é" * 200

    response = raw_upload(funded_alice_client, "image", name, files["photo"].read_bytes())

    assert response.status_code == 200
    upload = Upload.objects.get(pk=staged_id(response, "image"))
    assert len(upload.original_name) == 255 and upload.original_name.startswith("two people")
    assert upload.file.name.endswith(".jpg")


@pytest.mark.parametrize(
    ("role", "name", "make", "stored"),
    [
        ("image", "photo\u202egnp.exe", lambda d: make_image(d / "p.png", 640, 480), ".png"),
        ("image", "holiday.png", lambda d: make_image(d / "p.jpg", 640, 480, fmt="jpeg"), ".jpg"),
        ("image", "scan", lambda d: make_image(d / "p.webp", 640, 480, fmt="webp"), ".webp"),
        ("left_audio", "voice.wav", lambda d: make_audio(d / "a.mp3", 2.0), ".mp3"),
        ("left_audio", "voice.mp3", lambda d: make_audio(d / "a.flac", 2.0, fmt="flac"), ".flac"),
    ],
)
def test_a_kept_file_is_named_by_the_format_it_decoded_as_never_by_its_name(
    funded_alice_client, media_root, tmp_path, role, name, make, stored
):
    content = make(tmp_path).read_bytes()

    response = upload(funded_alice_client, role, _named(tmp_path / "sent", name, content))

    upload_row = Upload.objects.get(pk=staged_id(response, role))
    assert Path(upload_row.file.name).suffix == stored
    assert [p.suffix for p in stored_files(media_root) if "uploads" in p.parts] == [stored]


def _named(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


# --- what a form or an address may hold ------------------------------------------------


@pytest.mark.parametrize("raw", ["99999999999999999999999", "9223372036854775808", "²", "0"])
def test_an_upload_id_that_cannot_be_one_is_treated_as_no_upload(
    funded_alice_client, files, media_root, raw
):
    for url in (reverse("studio"), reverse("studio_form")):
        response = funded_alice_client.get(url, {"image_upload": raw})
        assert response.status_code == 200
        assert 'name="image_upload"' not in response.content.decode()

    response = funded_alice_client.post(
        reverse("studio_quote"), {"mode": "dialog", "left_audio_upload": raw}
    )
    assert "Add both audio clips to see the exact cost." in response.content.decode()

    staged = stage_all(funded_alice_client, files)
    response = funded_alice_client.post(
        reverse("job_new"), form_data(**staged | {"image_upload": raw}), HTTP_HX_REQUEST="true"
    )
    assert "Choose a file for “Photo”." in field_html(response, "image")
    assert not Job.objects.exists()


def test_a_form_sent_without_its_kind_of_video_says_so_above_the_form(
    funded_alice_client, files, media_root
):
    data = form_data(**stage_all(funded_alice_client, files))
    del data["mode"]

    response = funded_alice_client.post(reverse("job_new"), data)

    assert response.status_code == 400
    errors = response.content.decode().split('id="new-job-errors"', 1)[1].split("</div>\n", 1)[0]
    assert "Choose the kind of video (dialog, talking photo or video dub)" in errors
    assert not Job.objects.exists()
