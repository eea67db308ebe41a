"""A member makes a dialog video in real Chromium: upload a photo and two
clips, see the cost, submit, and watch the card reach "completed" and its
video load, without reloading. The cluster's poll loop runs in a thread, as
the django-q2 schedule would run it; the provider is the sandbox."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import Job
from jobs.pipeline import lifecycle
from tests.browser_support import full_page_shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_makes_a_dialog_video_and_watches_it_finish(
    pipeline,
    cluster,
    page,
    sign_in,
    artifacts,
    alice,
):
    photo = pipeline.photo()
    left = pipeline.audio(2.2, tone_hz=220)
    right = pipeline.audio(3.6, fmt="wav", tone_hz=330)
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)

    expect(page.get_by_text("Sandbox provider.")).to_be_visible()
    expect(page.get_by_text("Add both audio clips to see the exact cost.")).to_be_visible()

    page.get_by_label("Photo", exact=True).set_input_files(photo)
    expect(page.locator("#field-image .staged")).to_contain_text("two-people.jpg")
    page.get_by_label("Left speaker's audio", exact=True).set_input_files(left)
    expect(page.locator("#field-left_audio .staged")).to_contain_text("2.2 s")
    page.get_by_label("Right speaker's audio", exact=True).set_input_files(right)
    expect(page.locator("#field-right_audio .staged")).to_contain_text("3.6 s")

    # 3.6 s, the longer clip, is one 5 s unit: 15 credits at 480p, 30 at 720p.
    quote = page.locator("#quote")
    expect(quote).to_contain_text("15 credits")
    expect(quote).to_contain_text("$0.15")
    page.get_by_text("720p").click()
    expect(quote).to_contain_text("30 credits")
    expect(quote).to_contain_text("You have 300 credits available in the studio pool.")
    page.get_by_label("Prompt").fill("two friends chat happily")
    full_page_shot(page, artifacts / "studio-1-cost.png")

    page.get_by_role("button", name="Start the job").click()

    card = page.locator("article.job-card").first
    expect(card).to_be_visible()
    job = Job.objects.get()
    expect(card).to_have_attribute("id", f"job-{job.pk}")
    expect(page.locator("#balances")).to_contain_text("270 credits")
    full_page_shot(page, artifacts / "studio-2-submitted.png")

    expect(card.locator(".pill")).to_have_text("Completed", timeout=30_000)
    video = card.locator("video")
    expect(video).to_be_visible()
    page.wait_for_function(
        "v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle(), timeout=15_000
    )
    duration = video.evaluate("v => v.duration")
    assert duration == pytest.approx(3.6, abs=0.25)
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]")[1] == 720
    expect(card).to_contain_text("30 credits")
    expect(card.get_by_role("link", name="Download MP4")).to_be_visible()
    expect(page.locator("#balances")).to_contain_text("270 credits")
    # Polling stopped once no job was live.
    expect(page.locator("#cards-poller")).to_have_attribute("data-polling", "0")
    full_page_shot(page, artifacts / "studio-3-completed.png")


def test_a_job_made_elsewhere_appears_on_an_open_studio_page(
    pipeline, cluster, page, sign_in, artifacts, alice
):
    """Another tab or a team script makes a job while the page is open: the
    page, already polling for its live job, puts the new card first."""
    first = pipeline.create_dialog(left=6.0, right=6.5)  # live long enough to keep polling
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    expect(page.locator(f"#job-{first.pk}")).to_be_visible()
    expect(page.locator("#cards-poller")).to_have_attribute("data-polling", "1")

    # An old job changes (as a retention purge touches it): its card is not
    # this page's to show, even though the cards' answer carries it.
    with transaction.atomic():  # no poll ever sees it young
        old = pipeline.create_dialog(left=1.0, right=1.0, prompt="an old one")
        Job.objects.filter(pk=old.pk).update(
            created_at=timezone.now() - timedelta(days=40), updated_at=timezone.now()
        )
    second = pipeline.create_dialog(left=1.0, right=1.2, prompt="made by a script")

    cards = page.locator("#job-cards > article.job-card")
    expect(cards.first).to_have_attribute("id", f"job-{second.pk}", timeout=10_000)
    expect(cards).to_have_count(2)
    expect(page.locator(f"#job-{old.pk}")).to_have_count(0)
    expect(cards.first.locator(".pill")).to_have_text("Completed", timeout=30_000)
    expect(page.locator(f"#job-{first.pk} .pill")).to_have_text("Completed", timeout=30_000)
    full_page_shot(page, artifacts / "studio-4-job-made-elsewhere.png")


def test_cards_keep_coming_when_a_job_starts_while_an_update_is_in_flight(
    pipeline, cluster, page, sign_in, artifacts, alice
):
    """Starting a job while the page's request for changed cards is on its way
    must not lose that request's answer: a change it carries (here, another
    job failing, longer ago than the cursor's overlap) still reaches its card,
    and the new job's card follows it to the end, without a reload."""
    pipeline.sandbox.faults.update({"never_finish": 1})  # the first job stays live
    first = pipeline.create_dialog(left=1.0, right=1.0)
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    expect(page.locator(f"#job-{first.pk} .pill")).to_have_text("Processing", timeout=10_000)

    # Hold the next request for changed cards, as a slow network would.
    held = []

    def hold_one(route):
        if not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/studio/cards/**", hold_one)
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the page never asked for its cards"
        page.wait_for_timeout(50)
    changed_at = time.monotonic()
    lifecycle.job_fail(Job.objects.get(pk=first.pk), message="Stopped by staff.")

    page.get_by_label("Photo", exact=True).set_input_files(pipeline.photo())
    expect(page.locator("#field-image .staged")).to_be_visible()
    page.get_by_label("Left speaker's audio", exact=True).set_input_files(pipeline.audio(1.2))
    expect(page.locator("#field-left_audio .staged")).to_be_visible()
    page.get_by_label("Right speaker's audio", exact=True).set_input_files(
        pipeline.audio(1.4, fmt="wav", tone_hz=330)
    )
    expect(page.locator("#field-right_audio .staged")).to_be_visible()
    # The failure must be older than the 2 s the cursor overlaps by when the job starts.
    page.wait_for_timeout(max(0, 2.5 - (time.monotonic() - changed_at)) * 1000)
    pipeline.sandbox.faults.update({"never_finish": 0})
    page.get_by_role("button", name="Start the job").click()
    expect(page.locator("#jobs-announce")).to_contain_text("is queued")
    new = Job.objects.exclude(pk=first.pk).get()

    held[0].continue_()
    expect(page.locator(f"#job-{first.pk} .pill")).to_have_text("Failed", timeout=10_000)
    expect(page.locator(f"#job-{first.pk}")).to_contain_text("Stopped by staff.")
    cards = page.locator("#job-cards > article.job-card")
    expect(cards.first).to_have_attribute("id", f"job-{new.pk}", timeout=10_000)
    expect(cards).to_have_count(2)
    expect(cards.first.locator(".pill")).to_have_text("Completed", timeout=30_000)
    expect(page.locator("#balances")).to_contain_text(f"{300 - 15} credits")
    full_page_shot(page, artifacts / "studio-5-job-started-mid-update.png")
    assert not [line for line in console if "oobErrorNoTarget" in line], console
