"""Staff see a key's spend and set any of its limits in the admin, wider
than a member could; the key's identity stays read-only."""

import pytest
from django.urls import reverse

from jobs.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_key(alice):
    return ApiKey.objects.create(
        owner=alice,
        name="CI",
        prefix="abcd1234",
        secret_hash="f" * 64,
        budget_credits=10,
        allowed_modes=["dialog"],
    )


def change(client, key, **fields):
    data = {
        "expires_at_0": "",
        "expires_at_1": "",
        "allowed_modes": key.allowed_modes,
        "allowed_providers": key.allowed_providers,
        "budget_credits": "" if key.budget_credits is None else key.budget_credits,
        "budget_period": key.budget_period,
        "rate_limit_per_minute": "",
        "max_in_flight": "",
    }
    return client.post(reverse("admin:jobs_apikey_change", args=[key.pk]), data | fields)


def test_staff_widen_any_key(staff_client, alices_key):
    response = change(
        staff_client,
        alices_key,
        budget_credits="5000",
        budget_period="month",
        allowed_modes=[],
        rate_limit_per_minute="600",
        expires_at_0="2030-01-02",
        expires_at_1="10:00",
        name="renamed",
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    alices_key.refresh_from_db()
    assert (alices_key.budget_credits, alices_key.budget_period) == (5000, "month")
    assert (alices_key.allowed_modes, alices_key.rate_limit_per_minute) == ([], 600)
    assert alices_key.expires_at.year == 2030
    assert alices_key.name == "CI"  # not a limit: not editable here


def test_the_admin_shows_spend_this_period(staff_client, alices_key):
    page = staff_client.get(reverse("admin:jobs_apikey_change", args=[alices_key.pk]))
    html = page.content.decode()
    assert "0 of 10 this month" in html
    assert "f" * 64 not in html
    listing = staff_client.get(reverse("admin:jobs_apikey_changelist")).content.decode()
    assert "10 / month" in listing
