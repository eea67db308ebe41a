"""The gallery in real Chromium: filters that narrow the grid and stay in the
address, more items as the member scrolls, a silent preview on hover, a
video that plays with sound from the grid, and an item's page with remix.

Screenshots go to tests/artifacts/ for a person to look at."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from jobs.models import Job, JobInput, JobState
from tests.browser_support import full_page_shot
from tests.media_factory import make_audio, make_image, make_video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLOURS = [(200, 150, 110), (110, 160, 210), (150, 200, 140), (210, 120, 160), (170, 140, 220)]
PROMPTS = [
    "two friends chat happily in a sunny kitchen",
    "a calm news anchor reads the evening headlines",
    "speaks happily, with cheerful expressions",
    "a teacher explains fractions slowly",
    "",
    "grandparents laugh about an old photo, happily",
]
T0 = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


def _store(path: Path, name: str) -> str:
    with open(path, "rb") as fh:
        return default_storage.save(name, File(fh))


@pytest.fixture
def team_videos(settings, tmp_path, alice, bob):
    """30 finished videos by Alice and Bob, each with a real MP4 and poster."""
    settings.MEDIA_ROOT = tmp_path / "media"
    src = tmp_path / "src"
    src.mkdir()
    video = _store(make_video(src / "out.mp4", 4.0, 640, 360, 15), "outputs/out.mp4")
    posters = [
        _store(make_image(src / f"poster-{i}.png", 640, 360, color=c), f"posters/p{i}.png")
        for i, c in enumerate(COLOURS)
    ]
    audio = _store(make_audio(src / "voice.mp3", 2.0), "inputs/voice.mp3")
    photo = _store(make_image(src / "photo.png", 640, 360), "inputs/photo.png")
    kinds = [
        ("dialog", "joypix", "motion-2-dialog"),
        ("talking_photo", "lipsync_studio", "lipsync-image"),
        ("dialog", "lipsync_studio", "lipsync-image-multi"),
    ]
    jobs = []
    for i in range(30):
        mode, provider, model = kinds[i % 3]
        jobs.append(
            Job(
                owner=alice if i % 2 else bob,
                mode=mode,
                provider=provider,
                provider_model=model,
                resolution="720p" if i % 4 == 0 else "480p",
                prompt=PROMPTS[i % len(PROMPTS)],
                seed=-1 if i % 5 else 4242,
                shared=i != 8,  # one of Bob's is private
                state=JobState.COMPLETED,
                credits_per_unit=15,
                credits_held=15,
                credits_charged=15,
                output=video,
                output_seconds=4.0 + (i % 7) * 3.4,
                output_width=640,
                output_height=360,
                poster=posters[i % len(posters)],
                finished_at=T0 + timedelta(hours=7 * i),
            )
        )
    jobs = Job.objects.bulk_create(jobs)
    JobInput.objects.bulk_create(
        JobInput(
            job=job,
            role=role,
            file=name,
            original_name=Path(name).name,
            content_type="image/png" if role == "image" else "audio/mpeg",
            size=default_storage.size(name),
            duration=None if role == "image" else 2.0,
        )
        for job in jobs
        for role, name in (
            ("image", photo),
            ("audio" if job.mode == "talking_photo" else "left_audio", audio),
        )
    )
    return jobs


def test_a_member_filters_the_gallery_and_plays_a_video(
    page, live_server, sign_in, artifacts, alice, bob, team_videos
):
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Gallery").click()
    page.wait_for_url(f"{live_server.url}/gallery/")
    items = page.locator("#gallery-grid > .gallery-item")
    expect(items).to_have_count(24)

    # Scrolling to the end brings the next items, without a new page.
    page.locator("[data-gallery-more]").scroll_into_view_if_needed()
    expect(items).to_have_count(29)  # Bob's unshared video is not among them
    expect(page.locator("[data-gallery-more]")).to_have_count(0)
    expect(page.locator("#gallery-announce")).to_have_text(
        "5 more videos loaded; that is all of them."
    )
    assert page.url == f"{live_server.url}/gallery/"

    # Filters narrow the grid as they change, and the address keeps them.
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_label("Kind").select_option("dialog")
    page.wait_for_url(re.compile(r"/gallery/\?mode=dialog$"))
    page.get_by_label("Search prompts").fill("happily")
    page.wait_for_url(re.compile(r"/gallery/\?q=happily&mode=dialog$"))
    page.get_by_label("Made by").select_option(label="Bob")
    page.wait_for_url(re.compile(rf"/gallery/\?q=happily&mode=dialog&owner={bob.pk}$"))
    expected = [
        job.pk
        for job in sorted(team_videos, key=lambda j: j.finished_at, reverse=True)
        if job.mode == "dialog"
        and "happily" in job.prompt
        and job.owner_id == bob.pk
        and job.shared
    ]
    assert expected
    expect(items).to_have_count(len(expected))
    ids = [int(i.split("-")[-1]) for i in items.evaluate_all("els => els.map(e => e.id)")]
    assert ids == expected
    expect(page.get_by_role("heading", name="Matching videos")).to_be_visible()
    full_page_shot(page, artifacts / "gallery-1-filters.png")

    # The address is a view to share: opened afresh, it shows the same.
    page.goto(page.url)
    expect(items).to_have_count(len(expected))
    expect(page.get_by_label("Search prompts")).to_have_value("happily")

    # Hovering gives a silent preview; the play button plays it with sound.
    first = items.first
    media = first.locator("[data-gallery-media]")
    media.hover()
    preview = media.locator("video")
    expect(preview).to_have_count(1)
    assert preview.evaluate("v => v.muted")
    first.get_by_role("link", name=re.compile(r"^Play job #")).click()
    video = first.locator("video")
    expect(video).to_have_attribute("controls", "")
    page.wait_for_function(
        "v => v.readyState >= 2 && v.currentTime > 0.3 && !v.paused",
        arg=video.element_handle(),
        timeout=15_000,
    )
    assert video.evaluate("v => v.muted") is False
    # Leaving the item does not stop a video played on purpose: once the item
    # has seen the mouse leave (the gallery's own listener runs first, on the
    # way down), the video still plays on, its time moving past where it was.
    media.evaluate(
        "m => m.addEventListener('mouseleave', () => { m.dataset.left = '1'; }, {once: true})"
    )
    page.mouse.move(5, 5)
    expect(media).to_have_attribute("data-left", "1")
    left_at = video.evaluate("v => v.currentTime")
    page.wait_for_function(
        "([v, t]) => !v.paused && v.currentTime > t", arg=[video.element_handle(), left_at]
    )
    video.hover()  # so the screenshot shows the controls
    page.wait_for_function("v => v.matches(':hover')", arg=video.element_handle())
    full_page_shot(page, artifacts / "gallery-2-playing.png")
    filtered = page.url

    # Its page: how it was made, the inputs, remix.
    first.locator(".gallery-title a").click()
    page.wait_for_url(re.compile(r"/gallery/\d+/$"))
    expect(page.get_by_role("heading", name="How it was made")).to_be_visible()
    expect(page.locator(".input-card audio")).to_have_count(1)
    player = page.locator(".gallery-player video")
    page.wait_for_function("v => v.readyState >= 1", arg=player.element_handle(), timeout=10_000)
    full_page_shot(page, artifacts / "gallery-3-detail.png")
    page.get_by_role("button", name="Remix").click()
    page.wait_for_url(re.compile(r"/\?mode=dialog&provider="))
    expect(page.get_by_text("are in the form")).to_be_visible()
    expect(page.locator("#field-image .staged")).to_contain_text("photo.png")

    # On a phone the filters stack and the grid is one column.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(filtered)
    expect(items).to_have_count(len(expected))
    full_page_shot(page, artifacts / "gallery-4-phone.png")


def test_the_owner_takes_a_video_out_of_the_gallery_from_its_card(
    page, live_server, sign_in, artifacts, alice, team_videos
):
    mine = Job.objects.filter(owner=alice, shared=True).order_by("-created_at", "-id").first()
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, alice)
    switch = page.locator(f"#share-{mine.pk}-switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.focus()
    page.keyboard.press("Enter")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_be_focused()
    page.locator(f"#job-{mine.pk}").screenshot(path=artifacts / "gallery-5-card-switch.png")
    mine.refresh_from_db()
    assert not mine.shared
