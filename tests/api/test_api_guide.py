"""The API page (/developers/): what a signed-in member reads before writing a
script, filled in with this studio's address, today's prices and their own
API balance; linked from the navigation and the keys page."""

import html as htmllib
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.models import Pool, Rate

pytestmark = pytest.mark.django_db

URL = "/developers/"


def _text(response) -> str:
    """The page's text, tags dropped and whitespace squeezed."""
    html = response.content.decode()
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _price_row(response, mode: str, provider: str) -> str:
    html = response.content.decode()
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    found = [r for r in rows if mode in r and f'"provider": "{provider}"' in r]
    assert len(found) == 1, (mode, provider, len(found))
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found[0])))


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_page_is_html_not_the_apis_json(alice_client):
    """Outside /api/v1/ and /v1/: a member gets a page, not a JSON error."""
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_examples_use_this_studios_address(alice_client, settings):
    settings.PUBLIC_BASE_URL = "https://studio.example.org"
    text = _text(alice_client.get(URL))
    assert "curl -s https://studio.example.org/api/v1/lipsync-image" in text
    assert 'base = "https://studio.example.org/api/v1"' in text  # Python
    assert 'const base = "https://studio.example.org/api/v1";' in text  # JavaScript
    assert "https://studio.example.org/v1/lip-sync/motion-2-dialog" in text  # JoyPix
    assert "127.0.0.1" not in text


def test_every_endpoint_of_both_contracts_is_listed(alice_client):
    text = _text(alice_client.get(URL))
    for endpoint in (
        "POST /api/v1/lipsync-video",
        "POST /api/v1/lipsync-image",
        "POST /api/v1/lipsync-image-multi",
        "GET /api/v1/jobs",
        "GET /api/v1/jobs/{job_id}",
        "POST /api/v1/jobs/{job_id}/cancel",
        "POST /api/v1/quote",
        "GET /api/v1/me",
        "GET /api/v1/outputs/{token}/{name}",
        "POST /v1/lip-sync/motion-2-dialog",
        "POST /v1/lip-sync/motion-2",
        "GET /v1/tasks/{task_id}",
    ):
        assert endpoint in text, endpoint
    html = alice_client.get(URL).content.decode()
    assert 'href="/api/v1/docs"' in html and 'href="/v1/docs"' in html


def test_prices_come_from_the_rate_rows_in_force(alice_client):
    before = alice_client.get(URL)
    row = _price_row(before, "Talking photo", "lipsync_studio")
    assert "2 credits per second, 5 s minimum" in row
    assert "4 credits per second, 5 s minimum" in row
    assert "20 credits for a 10 s clip at 480p on lipsync.studio" in _text(before)
    assert "15 credits per 5 s" in _price_row(before, "Dialog", "joypix")

    # Staff set a new price for talking photos at 480p, in force from now.
    Rate.objects.create(
        provider="lipsync_studio",
        model="lipsync-image",
        resolution="480p",
        unit_seconds=1,
        min_seconds=5,
        credits_per_unit=3,
        usd_per_unit=Decimal("0.03"),
        effective_from=timezone.now() - timedelta(seconds=1),
    )
    # One that starts tomorrow changes nothing yet.
    Rate.objects.create(
        provider="joypix",
        model="motion-2-dialog",
        resolution="480p",
        credits_per_unit=99,
        usd_per_unit=Decimal("0.99"),
        effective_from=timezone.now() + timedelta(days=1),
    )
    after = alice_client.get(URL)
    row = _price_row(after, "Talking photo", "lipsync_studio")
    assert "3 credits per second, 5 s minimum" in row and "$0.03 a unit" in row
    assert "4 credits per second" in row  # 720p unchanged
    assert "30 credits for a 10 s clip at 480p" in _text(after)
    assert "15 credits per 5 s" in _price_row(after, "Dialog", "joypix")
    assert "99 credits" not in _text(after)


def test_the_members_api_balance_is_shown(alice_client, alice):
    credits_grant(user=alice, pool=Pool.API, amount=1234, key="grant:alice:api:guide")
    credits_grant(user=alice, pool=Pool.STUDIO, amount=55, key="grant:alice:studio:guide")
    html = alice_client.get(URL).content.decode()
    assert re.search(r'id="api-available">1,234<', html)


def test_limits_and_error_codes_follow_the_settings(alice_client, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 45
    settings.MAX_UPLOAD_MB = 20
    text = _text(alice_client.get(URL))
    assert "45 a minute per key" in text
    assert "Each file up to 20 MB" in text
    assert "within 24 h" in text  # Idempotency-Key
    for status in (401, 402, 403, 404, 409, 413, 415, 416, 422, 429):
        assert re.search(rf"\b{status} insufficient_credits|\b{status} \w", text), status
    assert '{"error": {"code": "invalid_request"' in text
    # The key's own limits have their codes too.
    for code in (
        "key_expired",
        "key_budget_exceeded",
        "provider_not_allowed",
        "too_many_in_flight",
    ):
        assert code in text, code


def test_both_ways_to_get_results_are_explained(alice_client):
    text = _text(alice_client.get(URL))
    assert "every few seconds" in text  # polling
    assert "signed the Standard Webhooks way" in text
    assert "redirects are not followed" in text


def test_the_navigation_and_the_keys_page_link_to_it(alice_client):
    for page in (reverse("studio"), reverse("api_keys"), URL):
        html = alice_client.get(page).content.decode()
        assert f'href="{URL}"' in html, page
    nav = alice_client.get(URL).content.decode()
    assert re.search(rf'href="{URL}" aria-current="page"', nav)
