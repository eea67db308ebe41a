"""A member's key limits on the keys page: spend this period against the
budget, the limits in force, and an edit form that only narrows; staff
defaults go into every new key."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.accounts.api_keys import ApiKeyError, api_key_create, api_key_limits_narrow
from jobs.credits.ledger import credits_grant, credits_hold
from jobs.models import ApiKey, Job, Pool
from tests.page_support import text

pytestmark = pytest.mark.django_db

KEYS = reverse("api_keys")


def limits_url(key) -> str:
    return reverse("api_key_limits", args=[key.pk])


def form_data(key, **changes) -> dict:
    data = {
        "expires_at": timezone.localtime(key.expires_at).strftime("%Y-%m-%dT%H:%M")
        if key.expires_at
        else "",
        "allowed_modes": key.allowed_modes,
        "allowed_providers": key.allowed_providers,
        "budget_credits": "" if key.budget_credits is None else str(key.budget_credits),
        "budget_period": key.budget_period,
        "rate_limit_per_minute": key.rate_limit_per_minute or "",
        "max_in_flight": key.max_in_flight or "",
    }
    return data | changes


@pytest.fixture
def key(alice):
    key, _raw = api_key_create(owner=alice, name="nightly")
    ApiKey.objects.filter(pk=key.pk).update(
        budget_credits=100,
        budget_period="week",
        allowed_modes=["talking_photo", "dialog"],
        rate_limit_per_minute=30,
        expires_at=timezone.now() + timedelta(days=30),
    )
    return ApiKey.objects.get(pk=key.pk)


def test_new_keys_take_the_staff_defaults(alice, settings):
    settings.API_KEY_DEFAULT_EXPIRY_DAYS = 10
    settings.API_KEY_DEFAULT_BUDGET = 250
    settings.API_KEY_DEFAULT_BUDGET_PERIOD = "day"
    settings.API_KEY_DEFAULT_MODES = ["video_dub"]
    settings.API_KEY_DEFAULT_PROVIDERS = ["joypix"]
    key, _raw = api_key_create(owner=alice, name="")
    key.refresh_from_db()
    assert (key.budget_credits, key.budget_period) == (250, "day")
    assert (key.allowed_modes, key.allowed_providers) == (["video_dub"], ["joypix"])
    assert timedelta(days=9, hours=23) < key.expires_at - timezone.now() <= timedelta(days=10)


def test_without_defaults_a_new_key_has_no_limits_of_its_own(alice):
    key, _raw = api_key_create(owner=alice, name="")
    key.refresh_from_db()
    assert (key.expires_at, key.budget_credits, key.allowed_modes) == (None, None, [])


def test_the_keys_page_shows_spend_against_budget_and_limits(alice_client, alice, key):
    credits_grant(user=alice, pool=Pool.API, amount=500, key="g")
    job = Job.objects.create(
        owner=alice, pool=Pool.API, source="api", api_key=key, mode="talking_photo",
        provider="lipsync_studio", resolution="480p", credits_held=40,
    )  # fmt: skip
    credits_hold(user=alice, pool=Pool.API, amount=40, key="h", job=job)
    page = text(alice_client.get(KEYS))
    assert "Spent this week: 40 of 100 credits" in page
    assert "Expires" in page and "Renews" in page
    assert "talking_photo, dialog; all providers" in page
    assert "30 requests/min" in page


def test_a_member_narrows_their_key(alice_client, key):
    response = alice_client.post(
        limits_url(key),
        form_data(key, budget_credits="60", allowed_modes=["dialog"], max_in_flight="2"),
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.budget_credits, key.allowed_modes, key.max_in_flight) == (60, ["dialog"], 2)


@pytest.mark.parametrize(
    "change",
    [
        {"budget_credits": "101"},
        {"budget_credits": ""},
        {"budget_period": "month"},
        {"allowed_modes": []},  # none ticked is all of them
        {"allowed_modes": ["talking_photo", "video_dub"]},
        {"expires_at": ""},
        {"rate_limit_per_minute": "31"},
        {"rate_limit_per_minute": ""},
    ],
)
def test_a_member_cannot_widen_their_key(alice_client, key, change):
    before = {f: getattr(key, f) for f in ("budget_credits", "budget_period", "allowed_modes")}
    response = alice_client.post(limits_url(key), form_data(key, **change))
    assert response.status_code == 422
    assert "can only be narrowed" in text(response)
    key.refresh_from_db()
    assert {f: getattr(key, f) for f in before} == before
    assert key.rate_limit_per_minute == 30


def test_a_later_expiry_is_refused_by_the_service(key):
    with pytest.raises(ApiKeyError, match="expire by"):
        api_key_limits_narrow(key=key, limits={"expires_at": key.expires_at + timedelta(days=1)})


def test_no_one_edits_another_members_key(client, bob, key):
    client.force_login(bob)
    assert client.get(limits_url(key)).status_code == 404
    assert client.post(limits_url(key), form_data(key, budget_credits="1")).status_code == 404
    key.refresh_from_db()
    assert key.budget_credits == 100


def test_with_htmx_the_form_swaps_in_and_a_saved_key_updates_its_row(alice_client, key):
    htmx = {"HX-Request": "true", "HX-Target": "limits-panel"}
    form = alice_client.get(limits_url(key), headers=htmx).content.decode()
    assert form.lstrip().startswith('<form id="limits-form"')
    refused = alice_client.post(
        limits_url(key),
        form_data(key, budget_credits="500"),
        headers={"HX-Request": "true", "HX-Target": "limits-form"},
    )
    assert refused.status_code == 422
    assert refused.content.decode().lstrip().startswith('<form id="limits-form"')
    saved = alice_client.post(
        limits_url(key),
        form_data(key, budget_credits="50"),
        headers={"HX-Request": "true", "HX-Target": "limits-form"},
    )
    assert saved.status_code == 200
    assert saved["HX-Retarget"] == f"#key-{key.pk}"
    html = saved.content.decode()
    assert re.search(rf'<tr id="key-{key.pk}"', html)
    assert "Spent this week: 0 of 50 credits" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    assert 'id="limits-panel" hx-swap-oob="true"' in html


def test_the_keys_page_shows_usage_per_key(alice, bob, alice_client):
    from tests.spend_support import funded, job_with_money

    funded(alice)
    key, _raw = api_key_create(owner=alice, name="nightly")
    ApiKey.objects.filter(pk=key.pk).update(budget_period="month")
    key.refresh_from_db()
    job_with_money(alice, key=key, held=40, charged=30)
    job_with_money(alice, key=key, held=20)
    job_with_money(alice, key=key, held=10, charged=10, at=timezone.now() - timedelta(days=70))
    page = text(alice_client.get(KEYS))
    assert "This month: 2 jobs, 30 charged, 20 returned" in page
    assert "Last 12 months: 3 jobs, 40 charged, 20 returned" in page
