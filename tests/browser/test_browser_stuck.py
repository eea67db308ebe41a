"""Issue 13 in real Chromium, on the sandbox provider with the cluster's poll
loop in a thread: "Stop waiting" on a job stuck at the provider (the hold
released once, the late completion ignored and not charged), the first run
of a staff member with no credits through to a playing video without leaving
the Studio, "You made this already" before paying twice, and a browser
notification when a job finishes while the page is in another tab."""

import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import EntryKind, FailureCode, Job, LedgerEntry
from jobs.pipeline import lifecycle
from tests.browser_support import full_page_shot
from tests.pipeline_support import GRANT, ledger_check, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def kinds(job) -> list[str]:
    return list(LedgerEntry.objects.filter(job=job).order_by("pk").values_list("kind", flat=True))


def upload_dialog(page, pipeline, *, left: float, right: float) -> None:
    """The dialog's three files, as pipeline.create_dialog makes them (same bytes)."""
    page.get_by_label("Photo", exact=True).set_input_files(pipeline.photo())
    expect(page.locator("#field-image .staged")).to_be_visible()
    page.get_by_label("Left speaker's audio", exact=True).set_input_files(
        pipeline.audio(left, tone_hz=220)
    )
    expect(page.locator("#field-left_audio .staged")).to_be_visible()
    page.get_by_label("Right speaker's audio", exact=True).set_input_files(
        pipeline.audio(right, fmt="wav", tone_hz=330)
    )
    expect(page.locator("#field-right_audio .staged")).to_be_visible()


def test_stop_waiting_on_a_stuck_job_releases_the_hold_once_and_ignores_the_late_video(
    pipeline, cluster, page, sign_in, artifacts, alice, settings
):
    # The studio expects 2 s x 2.0 = 4 s, so "Stop waiting" appears 6 s after
    # sending; the sandbox takes 14 s, and finishes after the member gave up.
    settings.SANDBOX_RTF = 2.0
    pipeline.sandbox.config.min_delay = 14.0
    page.set_viewport_size({"width": 1360, "height": 1000})
    job = pipeline.create_dialog(left=1.5, right=2.0)
    wait_until(lambda: Job.objects.get(pk=job.pk).state == "processing", what="sent")
    job.refresh_from_db()
    stop_from = lifecycle.stop_waiting_from(job)
    sign_in(page, alice)

    card = page.locator(f"#job-{job.pk}")
    stop = card.get_by_role("button", name="Stop waiting")
    if timezone.now() < stop_from:  # the page came before the job was overdue
        expect(stop).to_be_hidden()
    expect(stop).to_be_visible(timeout=15_000)  # revealed by the page at its time
    expect(card).to_contain_text("JoyPix may still finish it; a late video is then ignored")
    expect(page.locator("#balances")).to_contain_text("285 credits")
    full_page_shot(page, artifacts / "stuck-1-stop-waiting-offered.png")

    stop.click()

    expect(card.locator(".pill")).to_have_text("Failed")
    expect(card).to_contain_text("Stopped waiting by alice")
    expect(card).to_contain_text("JoyPix may still finish this video")
    expect(page.locator("#balances")).to_contain_text(f"{GRANT} credits")
    full_page_shot(page, artifacts / "stuck-2-stopped.png")
    job.refresh_from_db()
    assert (job.state, job.failure_code, job.stopped_by) == (
        "failed",
        FailureCode.STOPPED_WAITING,
        alice,
    )
    assert kinds(job) == [EntryKind.HOLD, EntryKind.RELEASE]

    # The provider finishes after all; the studio polls it once more (a webhook's
    # "poll now") and the loop keeps running: nothing moves, nothing is charged.
    [task] = pipeline.sandbox.tasks.values()
    wait_until(lambda: task.status == "completed", timeout=20, what="the late completion")
    lifecycle.job_poll_now(job.pk)
    time.sleep(1.5)  # a few rounds of the cluster's loop
    page.reload()

    expect(card.locator(".pill")).to_have_text("Failed")
    expect(card.locator("video")).to_have_count(0)
    expect(page.locator("#balances")).to_contain_text(f"{GRANT} credits")
    job.refresh_from_db()
    assert job.state == "failed" and job.credits_charged is None and not job.output
    assert kinds(job) == [EntryKind.HOLD, EntryKind.RELEASE]
    assert "Ledger OK" in ledger_check()
    full_page_shot(page, artifacts / "stuck-3-late-video-ignored.png")


def test_the_first_run_as_staff_with_no_credits_ends_with_a_playing_video(
    pipeline, cluster, page, sign_in, artifacts, staff, settings
):
    settings.STARTER_CREDITS = 500
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, staff)
    studio_url = page.url

    first_run = page.locator("#first-run")
    expect(first_run).to_contain_text("You have no studio credits yet.")
    upload_dialog(page, pipeline, left=1.2, right=1.6)
    quote = page.locator("#quote")
    expect(quote).to_contain_text("Not enough studio credits")
    expect(quote).to_contain_text("As staff, you can grant yourself starter credits")
    expect(quote).not_to_contain_text("Ask staff")
    full_page_shot(page, artifacts / "first-run-1-no-credits.png")

    first_run.get_by_role("button", name="Grant myself 500 credits").click()

    expect(page.locator("#first-run")).to_have_count(0)
    expect(page.locator("#balances")).to_contain_text("500 credits")
    # The files chosen before the grant are still there, and the cost now fits.
    expect(page.locator("#field-right_audio .staged")).to_contain_text("1.6 s")
    expect(quote).to_contain_text("You have 500 credits available in the studio pool.")
    expect(quote).to_contain_text("Ready in about")
    full_page_shot(page, artifacts / "first-run-2-granted.png")

    page.get_by_role("button", name="Start the job").click()

    card = page.locator("article.job-card").first
    expect(card.locator(".pill")).to_have_text("Completed", timeout=30_000)
    video = card.locator("video")
    page.wait_for_function(
        "v => v.readyState >= 2 && v.duration > 0", arg=video.element_handle(), timeout=15_000
    )
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0", arg=video.element_handle(), timeout=10_000)
    assert page.url == studio_url  # never left the Studio
    [grant] = LedgerEntry.objects.filter(kind=EntryKind.GRANT, account__user=staff)
    assert (grant.amount, grant.created_by) == (500, staff)
    full_page_shot(page, artifacts / "first-run-3-playing.png")


def test_the_same_files_again_are_flagged_before_paying_twice(
    pipeline, cluster, page, sign_in, artifacts, alice
):
    earlier = pipeline.create_dialog(left=1.5, right=2.0)
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    upload_dialog(page, pipeline, left=1.5, right=2.0)

    page.get_by_role("button", name="Start the job").click()

    warning = page.locator("#made-already")
    expect(warning).to_contain_text(f"You made this already (job #{earlier.pk}):")
    expect(warning.get_by_role("link", name="open it")).to_have_attribute(
        "href", f"/jobs/{earlier.pk}/"
    )
    assert Job.objects.count() == 1
    expect(page.locator("#balances")).to_contain_text(f"{GRANT - 15} credits")
    full_page_shot(page, artifacts / "duplicate-1-warned.png")

    warning.get_by_role("button", name="Make it again").click()

    expect(page.locator("#made-already")).to_have_count(0)
    expect(page.locator("article.job-card")).to_have_count(2)
    assert Job.objects.count() == 2
    full_page_shot(page, artifacts / "duplicate-2-made-again.png")


# Headless Chromium reports every page visible whichever tab is in front, so
# the test says when "the member is in another tab" through visibilityState;
# the Notification class is wrapped so the test sees each one the page makes.
NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.__notes = [];
  window.__tabHidden = true;
  class Recording extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title, body: options && options.body });
    }
  }
  Object.defineProperty(Recording, "permission", { get: () => Real.permission });
  Recording.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recording;
  Object.defineProperty(Document.prototype, "visibilityState", {
    get: () => (window.__tabHidden ? "hidden" : "visible"),
  });
})();
"""


def test_a_finished_job_notifies_while_the_page_is_in_another_tab(
    pipeline, cluster, browser, live_server, sign_in, artifacts, alice
):
    context = browser.new_context(
        permissions=["notifications"], viewport={"width": 1360, "height": 1000}
    )
    try:
        page = context.new_page()
        page.add_init_script(NOTIFICATIONS)
        sign_in(page, alice)
        assert page.evaluate("Notification.permission") == "granted"
        # Already allowed, so the page does not offer to ask.
        expect(page.locator("#notify-toggle")).to_be_hidden()
        expect(page).to_have_title(re.compile(r"^Studio · "))

        pipeline.sandbox.config.min_delay = 3.0
        job = pipeline.create_dialog(left=1.5, right=2.0)
        page.evaluate("htmx.trigger(document.body, 'cards-poll')")  # as a job made here asks

        expect(page).to_have_title(re.compile(r"^\(1\) Studio · "))
        full_page_shot(page, artifacts / "notify-1-live-title.png")
        expect(page.locator(f"#job-{job.pk} .pill")).to_have_text("Completed", timeout=30_000)
        page.wait_for_function("window.__notes.length > 0", timeout=5_000)
        notes = page.evaluate("window.__notes")
        assert notes == [
            {"title": f"Ready: Dialog · job #{job.pk}", "body": "The video plays in the Studio."}
        ]
        expect(page).to_have_title(re.compile(r"^Studio · "))

        # In front, the member sees the card change: no notification.
        page.evaluate("window.__tabHidden = false")
        second = pipeline.create_dialog(left=1.0, right=1.0, prompt="seen here")
        page.evaluate("htmx.trigger(document.body, 'cards-poll')")
        expect(page.locator(f"#job-{second.pk} .pill")).to_have_text("Completed", timeout=30_000)
        assert page.evaluate("window.__notes.length") == 1
        full_page_shot(page, artifacts / "notify-2-done.png")
    finally:
        context.close()


ASKS = """
(() => {
  window.__asked = 0;
  const real = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => { window.__asked += 1; return real(...args); };
})();
"""


def test_the_browser_is_asked_about_notifications_only_after_the_button(
    page, sign_in, alice, live_server
):
    page.add_init_script(ASKS)
    sign_in(page, alice)
    assert page.evaluate("Notification.permission") == "default"

    toggle = page.get_by_role("button", name="Notify me when a job is done")
    expect(toggle).to_be_visible()
    assert page.evaluate("window.__asked") == 0  # never unprompted

    toggle.click()

    page.wait_for_function("window.__asked === 1")
