"""Staff look at outbound webhook deliveries in the admin: what was sent, to
whom and why it failed; they may resend, never edit or delete."""

import pytest
from django.urls import reverse

from jobs.accounts.api_keys import api_key_create
from jobs.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(alice):
    key, _ = api_key_create(owner=alice, name="render farm")
    return WebhookDelivery.objects.create(
        api_key=key,
        url="https://hooks.example.com/lipsync",
        event_id="msg_admin1",
        payload={"id": "42", "status": "COMPLETED", "secret_looking": "<b>x</b>"},
        status=DeliveryStatus.FAILED,
        attempts=12,
        last_status_code=503,
        last_error="The receiver answered HTTP 503.",
    )


def test_staff_find_a_failed_delivery_and_read_the_body_sent(staff_client, failed):
    listing = staff_client.get(
        reverse("admin:jobs_webhookdelivery_changelist"), {"status__exact": "failed", "q": "alice"}
    ).content.decode()
    assert "hooks.example.com/lipsync" in listing and "render farm" in listing
    page = staff_client.get(reverse("admin:jobs_webhookdelivery_change", args=[failed.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "msg_admin1" in html and "The receiver answered HTTP 503." in html
    assert "&quot;status&quot;: &quot;COMPLETED&quot;" in html  # the body, escaped
    assert "<b>x</b>" not in html
    # Read-only: no save button, no delete.
    assert 'name="_save"' not in html
    assert (
        staff_client.post(
            reverse("admin:jobs_webhookdelivery_delete", args=[failed.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert WebhookDelivery.objects.filter(pk=failed.pk).exists()


def test_the_dashboard_links_a_failed_delivery_to_its_page(staff_client, failed):
    html = staff_client.get(reverse("admin:jobs_job_dashboard")).content.decode()
    assert reverse("admin:jobs_webhookdelivery_change", args=[failed.pk]) in html


def test_staff_resend_a_failed_delivery_with_the_same_id(
    staff_client, failed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as sent:
        response = staff_client.post(
            reverse("admin:jobs_webhookdelivery_changelist"),
            {"action": "resend", "_selected_action": [failed.pk]},
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.event_id) == ("pending", 0, "msg_admin1")
    assert len(sent) == 1  # one send queued after the commit
