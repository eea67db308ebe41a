"""The API's interactive docs (django-ninja's bundled Swagger UI, no CDN) and
the studio's API page, in real Chromium under the Content-Security-Policy:
both render with no violation and no console error, the docs list every
operation, and a call made from them with a real key answers.

Screenshots: tests/artifacts/api-docs.png, api-docs-joypix.png, api-page.png."""

import pytest
from playwright.sync_api import expect

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.models import Pool
from tests.browser.test_browser_csp import Watch
from tests.browser_support import full_page_shot
from tests.pipeline_support import _seed_rates

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def watch(page):
    page.set_viewport_size({"width": 1360, "height": 1000})
    return Watch(page)


def test_the_interactive_docs_work_under_the_policy(watch, live_server, alice, artifacts):
    credits_grant(user=alice, pool=Pool.API, amount=77, key="grant:alice:api:docs")
    _key, raw = api_key_create(owner=alice, name="docs")
    page = watch.page

    response = watch.visit(f"{live_server.url}/api/v1/docs", "lipsync.studio docs")
    assert "cdn" not in response.text().lower()  # the bundled UI, served by the studio
    operations = page.locator(".opblock")
    expect(operations).to_have_count(8)
    for path in ("/api/v1/lipsync-image", "/api/v1/jobs/{job_id}/cancel", "/api/v1/quote"):
        expect(page.locator(".opblock-summary-path", has_text=path).first).to_be_visible()

    # Authorize with a key, then call GET /api/v1/me from the page.
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input").fill(raw)
    page.locator(".modal-ux button.modal-btn.authorize").click()
    page.locator(".modal-ux button.btn-done").click()
    me = page.locator(".opblock").filter(has_text="/api/v1/me")
    me.locator(".opblock-summary-control").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    answer = me.locator(".live-responses-table")
    expect(answer).to_contain_text('"available": 77')
    expect(answer).to_contain_text("200")
    page.get_by_role("button", name="Accepted").first.click()  # a schema opened
    full_page_shot(page, artifacts / "api-docs.png")

    watch.visit(f"{live_server.url}/v1/docs", "JoyPix docs")
    expect(page.locator(".opblock")).to_have_count(3)
    expect(page.locator(".opblock-summary-path", has_text="/v1/tasks/{task_id}")).to_be_visible()
    full_page_shot(page, artifacts / "api-docs-joypix.png")

    assert watch.problems == []


def test_the_api_page_keeps_to_the_policy(watch, live_server, sign_in, alice, artifacts, settings):
    _seed_rates()  # a transactional test starts from an empty database
    settings.PUBLIC_BASE_URL = live_server.url
    page = watch.page
    sign_in(page, alice)
    page.get_by_role("link", name="API", exact=True).click()
    expect(page.get_by_role("heading", name="API", exact=True)).to_be_visible()
    watch.visit(f"{live_server.url}/developers/", "API page")
    page.get_by_text("Python (requests)").first.click()  # a sample opens
    expect(page.locator("pre", has_text="api.headers").first).to_be_visible()
    expect(page.locator("#examples pre").first).to_contain_text(
        f"curl -s {live_server.url}/api/v1/"
    )
    expect(page.locator(".prices-table")).to_contain_text("2 credits per second, 5 s minimum")
    full_page_shot(page, artifacts / "api-page.png")
    page.get_by_role("link", name="interactive docs", exact=True).click()
    expect(page.locator(".opblock")).to_have_count(8)
    assert watch.problems == []
