"""A file over the limit in real Chromium: the field says how large it is,
whether the server refused it before reading it (413) or while it streamed,
and a good file chosen next is kept as usual."""

import pytest
from playwright.sync_api import expect

from tests.browser_support import full_page_shot
from tests.media_factory import make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MB = 1024 * 1024


def test_a_file_over_the_limit_is_told_its_size_on_its_field(
    live_server, page, sign_in, alice, settings, tmp_path, artifacts
):
    settings.MAX_UPLOAD_MB = 1
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    huge = tmp_path / "interview.wav"
    huge.write_bytes(b"\0" * (7 * MB))  # more than a request to the field may declare
    big = tmp_path / "poster.jpg"
    big.write_bytes(b"\0" * int(1.5 * MB))  # found out while it streams
    photo = make_image(tmp_path / "two-people.jpg", 640, 480, fmt="jpeg")
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    page.get_by_role("navigation", name="Kind of video").get_by_role(
        "link", name="Talking photo"
    ).click()
    expect(page.get_by_role("heading", name="New talking photo")).to_be_visible()

    page.get_by_label("Audio", exact=True).set_input_files(huge)

    audio = page.locator("#field-audio")
    expect(audio.locator(".errorlist")).to_have_text("This file is 7 MB; the limit is 1 MB.")
    expect(page.get_by_label("Audio", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(audio).not_to_contain_text("The upload did not finish")

    page.get_by_label("Photo", exact=True).set_input_files(big)

    image = page.locator("#field-image")
    expect(image.locator(".errorlist")).to_have_text("This file is 1.5 MB; the limit is 1 MB.")
    full_page_shot(page, artifacts / "upload-limits-refused.png")

    page.get_by_label("Photo", exact=True).set_input_files(photo)

    expect(image.locator(".staged")).to_contain_text("two-people.jpg")
    expect(image.locator(".errorlist")).to_have_count(0)
    assert list(tmp_path.glob("tmp*.upload")) == []
