"""Each kind of video made in real Chromium against the sandbox provider:
a talking photo and a video dub through lipsync.studio (switching the kind
in the Studio's mode switcher), a talking photo through JoyPix's motion-2 and
a dialog through lipsync.studio's multi model (each chosen in the form), and
a bad file refused on its own field while the other
fields keep their uploads. Every flow checks the exact cost, computed here
from the seeded Rate rows, and ends with the finished video loaded and playing
in its card, without a reload. Screenshots go to tests/artifacts/modes-*.png.

The cluster's poll loop runs in a thread, as the django-q2 schedule would run
it (tasks themselves run inline, see tests/pipeline_support.py)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from jobs.credits.pricing import rate_current
from jobs.files.media import NOT_VIDEO
from jobs.models import Job
from tests.browser_support import full_page_shot
from tests.media_factory import make_image, make_text_file, make_video
from tests.pipeline_support import GRANT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The form's upload fields, by role, for each kind of video.
FIELDS = {
    "dialog": ["image", "left_audio", "right_audio"],
    "talking_photo": ["image", "audio"],
    "video_dub": ["video", "audio", "mask"],
}
OUTPUT_HEIGHT = {"480p": 480, "720p": 720}


@dataclass(frozen=True)
class Cost:
    units: int
    credits: int
    usd: Decimal

    @property
    def credits_text(self) -> str:
        return f"{self.credits} credits"

    @property
    def usd_text(self) -> str:
        return f"${self.usd:.2f}"


def expected_cost(
    *, model: str, resolution: str, seconds: float, provider: str = "lipsync_studio"
) -> Cost:
    """The price from the Rate row in force: whole started units (never under
    its minimum) times the rate."""
    rate = rate_current(provider=provider, model=model, resolution=resolution)
    units = max(math.ceil(seconds / rate.unit_seconds), rate.min_seconds // rate.unit_seconds)
    return Cost(units=units, credits=units * rate.credits_per_unit, usd=units * rate.usd_per_unit)


# --- steps shared by the flows -------------------------------------------------------


def open_studio(page: Page, sign_in, user) -> None:
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, user)
    expect(page.get_by_role("heading", name="New dialog video")).to_be_visible()


def switch_mode(page: Page, label: str, title: str) -> None:
    switcher = page.get_by_role("navigation", name="Kind of video")
    switcher.get_by_role("link", name=label, exact=True).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.get_by_role("heading", name=title)).to_be_focused()
    expect(switcher.get_by_role("link", name=label, exact=True)).to_have_attribute(
        "aria-current", "true"
    )


def upload_fields(page: Page) -> list[str]:
    return page.locator("#new-job-form [data-upload-field]").evaluate_all(
        "fields => fields.map(f => f.id.replace(/^field-/, ''))"
    )


def assert_only_fields(page: Page, mode: str) -> None:
    expect(page.locator("#new-job-form [data-upload-field]")).to_have_count(len(FIELDS[mode]))
    assert upload_fields(page) == FIELDS[mode]
    for role in FIELDS[mode]:
        expect(page.locator(f"#id_{role}")).to_be_visible()
    for role in {r for roles in FIELDS.values() for r in roles} - set(FIELDS[mode]):
        expect(page.locator(f"#new-job-form [name='{role}']")).to_have_count(0)
    expect(page.locator("input[name=mode]")).to_have_value(mode)


def stage(page: Page, label: str, role: str, path, *, shows: str) -> None:
    """Choose a file in a field and wait until the page says it is kept."""
    page.get_by_label(label, exact=True).set_input_files(path)
    staged = page.locator(f"#field-{role} .staged")
    expect(staged).to_contain_text(path.name)
    expect(staged).to_contain_text(shows)


def expect_quote(page: Page, cost: Cost, detail: str) -> None:
    quote = page.locator("#quote")
    expect(quote.locator(".quote-credits")).to_have_text(cost.credits_text)
    expect(quote.locator(".quote-cost")).to_contain_text(cost.usd_text)
    expect(quote.locator(".quote-detail")).to_have_text(detail)
    expect(quote).to_contain_text(f"You have {GRANT} credits available in the studio pool.")


def submit(page: Page):
    page.get_by_role("button", name="Start the job").click()
    card = page.locator("article.job-card").first
    expect(card).to_be_visible()
    job = Job.objects.get()
    expect(card).to_have_attribute("id", f"job-{job.pk}")
    return card, job


def expect_finished_video(page: Page, card, *, seconds: float, resolution: str) -> None:
    """The card reaches Completed by itself; its video loads, lasts as long
    as the audio, has the chosen height, and plays."""
    expect(card.locator(".pill")).to_have_text("Completed", timeout=30_000)
    video = card.locator("video")
    expect(video).to_be_visible()
    page.wait_for_function(
        "v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle(), timeout=15_000
    )
    assert video.evaluate("v => v.duration") == pytest.approx(seconds, abs=0.25)
    assert video.evaluate("v => v.videoHeight") == OUTPUT_HEIGHT[resolution]
    # Muted, so autoplay rules let it start without a gesture.
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function(
        "v => !v.paused && v.currentTime > 0.2", arg=video.element_handle(), timeout=15_000
    )
    video.evaluate("v => { v.pause(); v.currentTime = 0; }")
    expect(card.get_by_role("link", name="Download MP4")).to_be_visible()
    # Polling stopped once no job was live.
    expect(page.locator("#cards-poller")).to_have_attribute("data-polling", "0")


def sandbox_task(pipeline, model: str):
    """The one task the sandbox received, checked to be for `model`."""
    assert pipeline.sandbox.submissions == {f"/api/v1/{model}": 1}
    (task,) = pipeline.sandbox.tasks.values()
    assert task.model == model
    return task


# --- the flows ---------------------------------------------------------------------


def test_a_talking_photo_through_lipsync_studio(pipeline, cluster, page, sign_in, artifacts, alice):
    photo = pipeline.photo()
    voice = pipeline.audio(6.3, tone_hz=260)
    cost = expected_cost(model="lipsync-image", resolution="480p", seconds=6.3)
    assert (cost.units, cost.credits) == (7, 14)  # 7 whole seconds at 2 credits
    open_studio(page, sign_in, alice)

    # A photo chosen for a dialog is kept when switching to a talking photo.
    stage(page, "Photo", "image", photo, shows="960×640")
    switch_mode(page, "Talking photo", "New talking photo")
    assert_only_fields(page, "talking_photo")
    expect(page.locator("#field-image .staged")).to_contain_text("two-people.jpg")
    expect(page.get_by_label("Audio", exact=True)).to_be_visible()
    # lipsync.studio is the talking photo's default; JoyPix is offered second.
    provider = page.get_by_label("Provider")
    expect(provider).to_have_value("lipsync_studio")
    expect(provider.locator("option")).to_have_text(["lipsync.studio", "JoyPix"])
    expect(page.get_by_text("No account is set up for lipsync.studio")).to_be_visible()
    expect(page.locator("#quote")).to_have_text("Add the audio to see the exact cost.")

    stage(page, "Audio", "audio", voice, shows="6.3 s")
    expect_quote(
        page,
        cost,
        "6.3 s of audio → 7 s billed (rounded up to whole seconds) at 2 credits per second.",
    )
    page.get_by_label("Prompt").fill("smiles and speaks warmly")
    full_page_shot(page, artifacts / "modes-talking-photo-1-cost.png")

    card, job = submit(page)
    assert (job.mode, job.provider, job.provider_model) == (
        "talking_photo",
        "lipsync_studio",
        "lipsync-image",
    )
    assert job.credits_held == cost.credits
    expect(card).to_contain_text("Talking photo")
    expect(card).to_contain_text("lipsync.studio")
    expect(page.locator("#balances")).to_contain_text(f"{GRANT - cost.credits} credits")
    # The new form is still a talking photo, ready for the next one.
    expect(page.get_by_role("heading", name="New talking photo")).to_be_visible()

    expect_finished_video(page, card, seconds=6.3, resolution="480p")
    expect(card).to_contain_text(f"Charged{cost.credits_text}")
    expect(page.locator("#balances")).to_contain_text(f"{GRANT - cost.credits} credits")
    full_page_shot(page, artifacts / "modes-talking-photo-2-completed.png")
    task = sandbox_task(pipeline, "lipsync-image")
    assert set(task.inputs) == {"image", "audio"}
    assert task.prompt == "smiles and speaks warmly"


def test_a_talking_photo_through_joypix_motion_2(
    pipeline, cluster, page, sign_in, artifacts, alice
):
    photo = pipeline.photo()
    voice = pipeline.audio(4.2, tone_hz=240)
    cost = expected_cost(provider="joypix", model="motion-2", resolution="720p", seconds=4.2)
    assert (cost.units, cost.credits) == (1, 30)  # one started 5 s unit at 30 credits
    open_studio(page, sign_in, alice)
    switch_mode(page, "Talking photo", "New talking photo")

    provider = page.get_by_label("Provider")
    with page.expect_response(
        lambda r: r.url.endswith("/studio/provider/") and "joypix" in (r.request.post_data or "")
    ) as answer:
        provider.select_option(label="JoyPix")
    assert answer.value.ok
    expect(provider).to_have_value("joypix")
    stage(page, "Photo", "image", photo, shows="960×640")
    stage(page, "Audio", "audio", voice, shows="4.2 s")
    page.get_by_text("720p").click()
    expect_quote(page, cost, "4.2 s of audio → 1 × 5 s = 5 s billed at 30 credits per 5 s.")
    full_page_shot(page, artifacts / "modes-joypix-talking-photo-1-cost.png")

    card, job = submit(page)
    assert (job.mode, job.provider, job.provider_model, job.resolution) == (
        "talking_photo",
        "joypix",
        "motion-2",
        "720p",
    )
    assert job.credits_held == cost.credits
    expect(card).to_contain_text("JoyPix")

    expect_finished_video(page, card, seconds=4.2, resolution="720p")
    expect(card).to_contain_text(f"Charged{cost.credits_text}")
    expect(page.locator("#balances")).to_contain_text(f"{GRANT - cost.credits} credits")
    full_page_shot(page, artifacts / "modes-joypix-talking-photo-2-completed.png")
    assert pipeline.sandbox.submissions == {"/v1/lip-sync/motion-2": 1}
    (task,) = pipeline.sandbox.tasks.values()
    assert (task.model, set(task.inputs)) == ("motion-2", {"audio_url", "image_url"})


def test_a_video_dub_with_a_mask_through_lipsync_studio(
    pipeline, cluster, page, sign_in, artifacts, alice
):
    clip = make_video(pipeline.media_dir / "speaker.mp4", 1.6, 320, 240, 12)
    mask = make_image(pipeline.media_dir / "mouth-mask.png", 320, 240, fmt="png")
    voice = pipeline.audio(3.4, fmt="wav", tone_hz=300)
    cost_480 = expected_cost(model="lipsync-video", resolution="480p", seconds=3.4)
    cost = expected_cost(model="lipsync-video", resolution="720p", seconds=3.4)
    assert (cost.units, cost_480.credits, cost.credits) == (5, 10, 20)  # the 5 s minimum
    open_studio(page, sign_in, alice)

    switch_mode(page, "Video dub", "New video dub")
    assert_only_fields(page, "video_dub")
    expect(page.get_by_label("Photo", exact=True)).to_have_count(0)
    expect(page.get_by_label("Provider")).to_have_value("lipsync_studio")

    stage(page, "Video", "video", clip, shows="320×240")
    stage(page, "New audio", "audio", voice, shows="3.4 s")
    detail = "3.4 s of audio → 5 s billed (the 5 s minimum) at {} credits per second."
    expect_quote(page, cost_480, detail.format(2))
    stage(page, "Mask image (optional)", "mask", mask, shows="320×240")
    page.get_by_text("720p").click()
    expect_quote(page, cost, detail.format(4))
    full_page_shot(page, artifacts / "modes-video-dub-1-cost.png")

    card, job = submit(page)
    assert (job.mode, job.provider, job.provider_model, job.resolution) == (
        "video_dub",
        "lipsync_studio",
        "lipsync-video",
        "720p",
    )
    assert sorted(job.inputs.values_list("role", flat=True)) == ["audio", "mask", "video"]
    expect(page.locator("#balances")).to_contain_text(f"{GRANT - cost.credits} credits")

    expect_finished_video(page, card, seconds=3.4, resolution="720p")
    expect(card).to_contain_text(f"Charged{cost.credits_text}")
    full_page_shot(page, artifacts / "modes-video-dub-2-completed.png")
    task = sandbox_task(pipeline, "lipsync-video")
    assert set(task.inputs) == {"video", "audio", "mask_image"}
    assert task.resolution == "720p"


def test_a_dialog_through_lipsync_studio_multi(pipeline, cluster, page, sign_in, artifacts, alice):
    """JoyPix first (no speaking order), then lipsync.studio: its order control
    appears with the provider, its choice re-prices the job, survives the
    provider going and coming back, and the speakers taking turns make a video
    (and a charge) as long as both clips."""
    photo = pipeline.photo()
    left = pipeline.audio(2.2, tone_hz=220)
    right = pipeline.audio(5.6, fmt="wav", tone_hz=330)
    joypix = expected_cost(
        provider="joypix", model="motion-2-dialog", resolution="480p", seconds=5.6
    )
    at_once = expected_cost(model="lipsync-image-multi", resolution="480p", seconds=5.6)
    in_turn = expected_cost(model="lipsync-image-multi", resolution="480p", seconds=7.8)
    assert (joypix.credits, at_once.credits, in_turn.credits) == (30, 12, 16)
    open_studio(page, sign_in, alice)

    assert_only_fields(page, "dialog")
    provider = page.get_by_label("Provider")
    expect(provider).to_have_value("joypix")  # the first provider making dialogs
    order = page.get_by_role("group", name="How do they speak?")
    turns = page.get_by_label("They take turns")
    expect(order).to_have_count(0)  # JoyPix takes no speaking order

    stage(page, "Photo", "image", photo, shows="960×640")
    stage(page, "Left speaker's audio", "left_audio", left, shows="2.2 s")
    expect(page.locator("#quote")).to_have_text("Add both audio clips to see the exact cost.")
    stage(page, "Right speaker's audio", "right_audio", right, shows="5.6 s")
    expect_quote(
        page,
        joypix,
        "5.6 s of audio (the longer clip) → 2 × 5 s = 10 s billed at 15 credits per 5 s.",
    )

    def choose_provider(label: str, slug: str) -> None:
        with page.expect_response(
            lambda r: r.url.endswith("/studio/provider/") and slug in (r.request.post_data or "")
        ) as answer:
            provider.select_option(label=label)
        assert answer.value.ok
        expect(provider).to_have_value(slug)

    # Choosing lipsync.studio asks how they speak, and prices what is chosen.
    choose_provider("lipsync.studio", "lipsync_studio")
    expect(order).to_be_visible()
    expect(page.get_by_label("They speak at the same time")).to_be_checked()
    expect_quote(
        page,
        at_once,
        "5.6 s of audio (the longer clip) → 6 s billed (rounded up to whole seconds) "
        "at 2 credits per second.",
    )
    turns_detail = (
        "7.8 s of audio (both clips, one after the other) → 8 s billed "
        "(rounded up to whole seconds) at 2 credits per second."
    )
    turns.check()
    expect_quote(page, in_turn, turns_detail)
    full_page_shot(page, artifacts / "modes-dialog-multi-1-cost.png")

    # JoyPix again: no order; then lipsync.studio: the choice is still there.
    choose_provider("JoyPix", "joypix")
    expect(order).to_have_count(0)
    expect(page.locator("#quote .quote-credits")).to_have_text(joypix.credits_text)
    choose_provider("lipsync.studio", "lipsync_studio")
    expect(turns).to_be_checked()
    expect_quote(page, in_turn, turns_detail)
    for role in FIELDS["dialog"]:  # nothing staged was lost on the way
        expect(page.locator(f"#field-{role} .staged")).to_be_visible()

    card, job = submit(page)
    assert (job.mode, job.provider, job.provider_model, job.dialog_order) == (
        "dialog",
        "lipsync_studio",
        "lipsync-image-multi",
        "sequential",
    )
    assert job.credits_held == in_turn.credits
    expect(card).to_contain_text("lipsync.studio")
    expect(card).to_contain_text("SpeakersThey take turns")
    # The fresh form keeps the provider and the order just used.
    expect(page.get_by_label("Provider")).to_have_value("lipsync_studio")
    expect(page.get_by_label("They take turns")).to_be_checked()

    # Left, then right: the video lasts as long as both, and that is what is charged.
    expect_finished_video(page, card, seconds=7.8, resolution="480p")
    expect(card).to_contain_text(f"Charged{in_turn.credits_text}")
    expect(page.locator("#balances")).to_contain_text(f"{GRANT - in_turn.credits} credits")
    full_page_shot(page, artifacts / "modes-dialog-multi-2-completed.png")
    # Nothing went to JoyPix's endpoint.
    task = sandbox_task(pipeline, "lipsync-image-multi")
    assert set(task.inputs) == {"image", "left_audio", "right_audio"}
    assert task.order == "sequential"


def test_a_text_file_named_mp4_is_refused_on_the_dub_video_field(
    pipeline, cluster, page, sign_in, artifacts, alice
):
    notes = make_text_file(pipeline.media_dir / "holiday.mp4")
    mask = make_image(pipeline.media_dir / "mouth-mask.png", 320, 240, fmt="png")
    voice = pipeline.audio(3.4, fmt="wav", tone_hz=300)
    open_studio(page, sign_in, alice)
    switch_mode(page, "Video dub", "New video dub")

    stage(page, "New audio", "audio", voice, shows="3.4 s")
    stage(page, "Mask image (optional)", "mask", mask, shows="320×240")
    page.get_by_label("Video", exact=True).set_input_files(notes)

    video_field = page.locator("#field-video")
    expect(video_field.locator(".errorlist")).to_have_text(NOT_VIDEO)
    expect(video_field).to_have_class(re.compile(r"\bfield--invalid\b"))
    expect(page.get_by_label("Video", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(video_field.locator(".staged")).to_have_count(0)
    # The other fields keep their files, and say nothing is wrong with them.
    expect(page.locator("#field-audio .staged")).to_contain_text(voice.name)
    expect(page.locator("#field-mask .staged")).to_contain_text(mask.name)
    expect(page.locator("#new-job-form .errorlist")).to_have_count(1)
    full_page_shot(page, artifacts / "modes-bad-file-1-field.png")

    # Starting the job anyway: the video field asks for a file, the rest stay.
    page.get_by_role("button", name="Start the job").click()
    expect(video_field.locator(".errorlist")).to_have_text("Choose a file for “Video”.")
    expect(page.locator("#field-audio .staged")).to_contain_text(voice.name)
    expect(page.locator("#field-mask .staged")).to_contain_text(mask.name)
    expect(page.get_by_role("heading", name="New video dub")).to_be_visible()
    expect(page.locator("article.job-card")).to_have_count(0)
    expect(page.locator("#balances")).to_contain_text(f"{GRANT} credits")
    expect(page.locator("#balances")).not_to_contain_text("held")
    full_page_shot(page, artifacts / "modes-bad-file-2-submitted.png")

    assert not Job.objects.exists()
    assert pipeline.sandbox.submissions == {}
    assert pipeline.studio_balance().available == GRANT
