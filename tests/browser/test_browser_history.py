"""Every job findable, in real Chromium: the Studio's column pages back
through 60 jobs with "Load older" while new jobs arrive at the top (no card
twice, none missing), filters that stay in the address and survive "back",
and the page of a failed, a processing (live until it ends) and a completed
job.

Screenshots go to tests/artifacts/ for a person to look at."""

import re
from datetime import timedelta

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone
from playwright.sync_api import expect

from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobState
from jobs.pipeline import lifecycle
from tests.browser_support import full_page_shot
from tests.factories import make_job
from tests.media_factory import make_audio, make_image, make_video
from tests.studio.test_history import bulk_jobs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def dom_card_ids(page) -> list[int]:
    return [
        int(pk)
        for pk in page.eval_on_selector_all(
            "#job-cards > article.job-card",
            "cards => cards.map(card => card.id.replace('job-', ''))",
        )
    ]


def newest_first(owner) -> list[int]:
    return list(
        Job.objects.filter(owner=owner, deleted_at__isnull=True)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )


def test_paging_back_through_60_jobs_while_new_ones_arrive(
    live_server, page, sign_in, artifacts, alice, bob
):
    now = timezone.now()
    start = now - timedelta(hours=3)
    # Two of them are still rendering, so the page's poller runs.
    bulk_jobs(
        alice,
        60,
        start=start,
        state=lambda i: (
            JobState.PROCESSING
            if i in (5, 59)
            else (JobState.FAILED if i % 7 == 0 else JobState.COMPLETED)
        ),
        provider=lambda i: "lipsync_studio" if i % 3 == 0 else "joypix",
    )
    bulk_jobs(bob, 5, start=start)
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)

    expect(page.locator("#job-cards > article.job-card")).to_have_count(24)
    older = page.get_by_role("link", name="Load older jobs")

    # Three new jobs arrive while the member reads the first page.
    arrived = bulk_jobs(alice, 3, start=now)
    expect(page.locator("#job-cards > article.job-card")).to_have_count(27)
    assert dom_card_ids(page)[:3] == [job.pk for job in reversed(arrived)]

    older.click()
    expect(page.locator("#job-cards > article.job-card")).to_have_count(51)
    expect(page.locator("#jobs-announce")).to_have_text("24 older jobs loaded.")
    # Two more arrive between the second and the third page.
    more = bulk_jobs(alice, 2, start=now + timedelta(minutes=5))
    expect(page.locator("#job-cards > article.job-card")).to_have_count(53)
    full_page_shot(page, artifacts / "history-1-two-pages.png")

    page.get_by_role("link", name="Load older jobs").click()
    expect(page.locator("#job-cards > article.job-card")).to_have_count(65)
    expect(page.locator("#load-older")).to_contain_text("That is all of them.")
    expect(page.get_by_role("link", name="Load older jobs")).to_have_count(0)

    ids = dom_card_ids(page)
    assert len(ids) == len(set(ids)), "a card appears twice"
    assert ids == newest_first(alice)  # every job, once, newest first
    assert {job.pk for job in arrived + more} <= set(ids)

    # A card loaded from an older page still gets its updates from the poller.
    rendering = Job.objects.filter(owner=alice, state=JobState.PROCESSING).order_by("created_at")
    oldest_live = rendering.first()
    assert oldest_live.pk in ids[24:]
    lifecycle.job_fail(oldest_live, message="The provider did not finish the job in time.")
    card = page.locator(f"#job-{oldest_live.pk}")
    expect(card.locator("[data-state]")).to_have_text("Failed")
    expect(card).to_contain_text("The provider did not finish the job in time.")
    card.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "history-2-older-card-updated.png")


def test_filters_live_in_the_address_and_back_restores_them(
    live_server, page, sign_in, artifacts, alice
):
    start = timezone.now() - timedelta(hours=2)
    bulk_jobs(
        alice,
        30,
        start=start,
        state=lambda i: JobState.FAILED if i % 5 == 0 else JobState.COMPLETED,
        provider=lambda i: "lipsync_studio" if i % 2 else "joypix",
    )
    # One job still rendering, older than the rest: the page's poller runs.
    bulk_jobs(alice, 1, start=start - timedelta(hours=1), state=JobState.PROCESSING)
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    expect(page.locator("#job-cards > article.job-card")).to_have_count(24)

    page.locator("#id_jobs-state").select_option("failed")
    expect(page).to_have_url(re.compile(r"/\?jobs-state=failed$"))
    failed = list(
        Job.objects.filter(owner=alice, state=JobState.FAILED)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    expect(page.locator("#job-cards > article.job-card")).to_have_count(len(failed))
    assert dom_card_ids(page) == failed
    # New jobs arrive: the poller brings only the one this column shows.
    [new_failed] = bulk_jobs(alice, 1, start=timezone.now(), state=JobState.FAILED)
    bulk_jobs(alice, 1, start=timezone.now() + timedelta(minutes=1))  # completed
    expect(page.locator("#job-cards > article.job-card")).to_have_count(len(failed) + 1)
    failed.insert(0, new_failed.pk)
    page.wait_for_timeout(2500)  # another poll or two: still nothing else
    assert dom_card_ids(page) == failed

    page.locator("#id_jobs-provider").select_option("joypix")
    expect(page).to_have_url(re.compile(r"jobs-state=failed&jobs-provider=joypix$"))
    joypix_failed = [pk for pk in failed if Job.objects.get(pk=pk).provider == "joypix"]
    expect(page.locator("#job-cards > article.job-card")).to_have_count(len(joypix_failed))
    full_page_shot(page, artifacts / "history-3-filtered.png")

    # A shared address opens filtered; "back" returns to the previous filter.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?jobs-state=failed$"))
    expect(page.locator("#job-cards > article.job-card")).to_have_count(len(failed))
    expect(page.locator("#id_jobs-state")).to_have_value("failed")
    expect(page.locator("#id_jobs-provider")).to_have_value("")
    page.go_back()
    expect(page.locator("#job-cards > article.job-card")).to_have_count(24)
    expect(page.locator("#id_jobs-state")).to_have_value("")

    page.goto(f"{live_server.url}/?jobs-mode=video_dub")
    expect(page.get_by_text("No jobs match these filters")).to_be_visible()


@pytest.fixture
def real_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    src = tmp_path / "src"
    src.mkdir()

    def store(path, name):
        with open(path, "rb") as fh:
            return default_storage.save(name, File(fh))

    return {
        "video": store(make_video(src / "out.mp4", 3.0, 640, 360, 15), "outputs/out.mp4"),
        "image": store(make_image(src / "photo.png", 640, 360), "inputs/photo.png"),
        "left_audio": store(make_audio(src / "left.mp3", 2.0), "inputs/left.mp3"),
        "right_audio": store(make_audio(src / "right.mp3", 3.0, tone_hz=330), "inputs/right.mp3"),
    }


def with_inputs(job, files):
    for role in ("image", "left_audio", "right_audio"):
        job.inputs.create(
            role=role,
            file=files[role],
            original_name=files[role].rsplit("/", 1)[-1],
            content_type="image/png" if role == "image" else "audio/mpeg",
            size=1000,
            duration=None if role == "image" else 2.0,
            width=640 if role == "image" else None,
            height=360 if role == "image" else None,
        )
    return job


def test_the_pages_of_a_failed_a_processing_and_a_completed_job(
    live_server, page, sign_in, artifacts, alice, real_files
):
    credits_grant(user=alice, pool="studio", amount=500, key="grant:alice:browser")
    now = timezone.now()
    failed = with_inputs(
        make_job(
            alice,
            state=JobState.FAILED,
            created=now - timedelta(minutes=30),
            submitted_after=timedelta(seconds=2),
            finished_after=timedelta(minutes=12),
            sent_at=now - timedelta(minutes=30) + timedelta(seconds=1),
            first_status_at=now - timedelta(minutes=29),
            task_id="task_5f3a9c",
            error="The provider refused this job: no face was found in the photo "
            "(face detector confidence 0.12 < 0.50). Nothing was charged.",
        ),
        real_files,
    )
    processing = with_inputs(
        make_job(
            alice,
            state=JobState.PROCESSING,
            created=now - timedelta(seconds=20),
            submitted_after=timedelta(seconds=2),
            sent_at=now - timedelta(seconds=19),
            task_id="task_live_77",
            prompt="two friends chat happily",
        ),
        real_files,
    )
    completed = with_inputs(
        make_job(
            alice,
            state=JobState.COMPLETED,
            created=now - timedelta(hours=2),
            submitted_after=timedelta(seconds=2),
            provider_done_after=timedelta(minutes=4),
            finished_after=timedelta(minutes=5),
            charged=15,
            output=real_files["video"],
            output_seconds=3.0,
            output_width=640,
            output_height=360,
            sent_at=now - timedelta(hours=2) + timedelta(seconds=1),
            first_status_at=now - timedelta(hours=2) + timedelta(minutes=3),
            archived_at=now - timedelta(hours=2) + timedelta(minutes=5),
            provider_seed=1234567,
        ),
        real_files,
    )
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)

    # From its card to its page.
    page.locator(f"#job-{failed.pk}").get_by_role("link", name="Details").click()
    expect(page).to_have_url(f"{live_server.url}/jobs/{failed.pk}/")
    expect(page.get_by_role("heading", name="Why it failed")).to_be_visible()
    expect(page.get_by_text("face detector confidence 0.12 < 0.50")).to_be_visible()
    expect(page.locator(".job-ledger")).to_contain_text("Release")
    expect(page.get_by_text("task_5f3a9c").first).to_be_visible()
    full_page_shot(page, artifacts / "job-page-failed.png")

    page.goto(f"{live_server.url}/jobs/{completed.pk}/")
    video = page.locator("video.job-page-video")
    expect(video).to_be_visible()
    page.wait_for_function(
        "document.querySelector('video.job-page-video').readyState >= 1", timeout=10_000
    )
    assert video.evaluate("v => v.duration") == pytest.approx(3.0, abs=0.2)
    expect(page.get_by_text("1234567, reported by the provider")).to_be_visible()
    expect(page.locator(".job-ledger")).to_contain_text("Capture")
    full_page_shot(page, artifacts / "job-page-completed.png")

    page.goto(f"{live_server.url}/jobs/{processing.pk}/")
    expect(page.locator("#job-live [data-state]")).to_have_text("Processing")
    expect(page.locator("#job-live .progress")).to_be_visible()
    expect(
        page.locator(".timeline-step").filter(has_text="Completed at the provider")
    ).to_contain_text("not yet")
    full_page_shot(page, artifacts / "job-page-processing.png")
    # It ends while the page is open: the page follows without a reload.
    lifecycle.job_fail(processing, message="The provider reported a failure: out of capacity.")
    expect(page.locator("#job-live [data-state]")).to_have_text("Failed", timeout=10_000)
    expect(page.get_by_text("out of capacity.")).to_be_visible()
    expect(page.locator(".job-ledger")).to_contain_text("Release")
    expect(page.locator("#balances")).not_to_contain_text("held")  # the sidebar follows
    page.wait_for_timeout(2500)
    # The poll stopped (286): no more requests for the live part.
    asked = []
    page.on(
        "request", lambda r: asked.append(r.url) if f"/jobs/{processing.pk}/" in r.url else None
    )
    page.wait_for_timeout(4500)
    assert asked == []
    full_page_shot(page, artifacts / "job-page-processing-ended.png")
