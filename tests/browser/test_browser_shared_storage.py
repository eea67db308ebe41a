"""With S3 storage, in real Chromium: the gallery's video and poster come
from the bucket (moto's S3 server on loopback) through the studio's signed
redirects (video, an input's audio, poster), play and show under the
Content-Security-Policy, with no
violation or console error.

Screenshot: tests/artifacts/shared-storage-gallery-item.png."""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser_support import full_page_shot
from tests.pipeline_support import run_until_terminal
from tests.storage_support import use_storage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


def test_a_video_from_the_bucket_plays_in_the_gallery_under_the_csp(
    page, pipeline, settings, tmp_path, s3_server, sign_in, artifacts, alice
):
    store = use_storage(settings, "s3", tmp_path=tmp_path, endpoint=s3_server)
    # As settings.py does at start for STORAGE_BACKEND=s3: the store's origin
    # may serve images and media.
    settings.SECURE_CSP = {
        **settings.SECURE_CSP,
        "img-src": [*settings.SECURE_CSP["img-src"], *store.origins],
        "media-src": [*settings.SECURE_CSP["media-src"], *store.origins],
    }
    done = run_until_terminal(pipeline.create_dialog(left=2.0, right=2.5, prompt="from the bucket"))
    assert done.state == "completed", done.error
    assert {done.output.name, done.poster.name} <= store.object_names()

    problems: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    fetched_from_store: list[tuple[str, int]] = []
    store_host = urlsplit(s3_server).netloc
    page.on(
        "response",
        lambda r: (
            fetched_from_store.append((urlsplit(r.url).path, r.status))
            if urlsplit(r.url).netloc == store_host
            else None
        ),
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, alice)

    response = page.goto(pipeline.studio_url + reverse("gallery_detail", args=[done.pk]))
    assert store.origins[0] in response.headers["content-security-policy"]
    player = page.locator(".gallery-player video")
    expect(player).to_have_count(1)
    player.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function(
        "v => v.readyState >= 2 && v.currentTime > 0.3", arg=player.element_handle(), timeout=15_000
    )
    # Every byte of the video came from the bucket, by ranged requests the
    # browser sent there itself after the studio's redirect.
    video_key = f"/{store.bucket}/{done.output.name}"
    assert (video_key, 206) in fetched_from_store or (video_key, 200) in fetched_from_store
    # An input's player: the same way, from the bucket.
    voice = page.locator(".input-card audio").first
    voice.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function(
        "a => a.readyState >= 2 && a.currentTime > 0.2", arg=voice.element_handle(), timeout=15_000
    )
    full_page_shot(page, artifacts / "shared-storage-gallery-item.png")

    # The poster too, in the gallery's grid.
    page.goto(pipeline.studio_url + reverse("gallery"))
    poster = page.locator(f"#gallery-item-{done.pk} img").first
    expect(poster).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=poster.element_handle()
    )
    assert (f"/{store.bucket}/{done.poster.name}", 200) in fetched_from_store
    assert problems == []
