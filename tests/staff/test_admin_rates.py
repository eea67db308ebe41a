"""Prices are rows staff edit in the admin; a job keeps the rate it was quoted."""

import pytest
from django.urls import reverse

from jobs.credits.pricing import quote
from jobs.models import Rate

pytestmark = pytest.mark.django_db


def test_staff_change_a_rate_in_the_admin_and_new_quotes_follow(client, staff):
    client.force_login(staff)
    rate = Rate.objects.get(provider="joypix", model="motion-2-dialog", resolution="480p")

    page = client.get(reverse("admin:jobs_rate_changelist")).content.decode()
    assert "joypix" in page and "480p" in page

    data = {
        "provider": "joypix",
        "model": rate.model,
        "resolution": "480p",
        "unit_seconds": 5,
        "min_seconds": 0,
        "credits_per_unit": 18,
        "usd_per_unit": "0.18",
        "effective_from_0": rate.effective_from.strftime("%Y-%m-%d"),
        "effective_from_1": rate.effective_from.strftime("%H:%M:%S"),
        "note": "New price from the JoyPix page",
    }
    response = client.post(reverse("admin:jobs_rate_change", args=[rate.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]

    q = quote(provider="joypix", model=rate.model, resolution="480p", seconds=6.1)
    assert (q.credits, str(q.usd)) == (36, "0.36")


def test_members_cannot_reach_the_rates(client, alice):
    client.force_login(alice)
    response = client.get(reverse("admin:jobs_rate_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
