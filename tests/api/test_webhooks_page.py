"""A member's page of a key's webhooks: the secret, recent deliveries with
status code, attempts, next try and the body sent; resend; a test event."""

from __future__ import annotations

import pytest
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from jobs.accounts.api_keys import api_key_create
from jobs.api.webhooks import webhook_secret
from jobs.models import DeliveryStatus, WebhookDelivery
from tests.api.test_webhooks_out import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def hooks_page(alice_key):
    return reverse("api_key_webhooks", args=[alice_key[0].pk])


def test_the_keys_page_links_each_keys_webhooks(alice_client, alice_key, hooks_page):
    assert hooks_page in alice_client.get(reverse("api_keys")).content.decode()


def test_another_members_key_is_not_found(client, bob, alice_key, hooks_page):
    client.force_login(bob)
    assert client.get(hooks_page).status_code == 404
    test = reverse("api_key_webhook_test", args=[alice_key[0].pk])
    assert client.post(test, {"url": "http://127.0.0.1:9/"}).status_code == 404


def test_a_test_event_is_sent_signed_and_listed_then_resent(
    alice_client, alice_key, hooks_page, settings, django_capture_on_commit_callbacks
):
    settings.FETCH_ALLOW_LOOPBACK = True
    key = alice_key[0]
    down = Receiver([(500, {}), (200, {})])
    try:
        test = reverse("api_key_webhook_test", args=[key.pk])
        with django_capture_on_commit_callbacks(execute=True):
            answer = alice_client.post(test, {"url": down.url}, headers={"HX-Request": "true"})
        assert answer.status_code == 200
        delivery = WebhookDelivery.objects.get(api_key=key)
        assert delivery.event_id in answer.content.decode()  # listed, queued for the commit
        # Sent right after the commit (the cluster runs synchronously in tests): shown failing.
        assert len(down.hits) == 1
        html = alice_client.get(hooks_page).content.decode()
        assert delivery.event_id in html and "HTTP 500" in html and "Pending" in html
        assert "&quot;status&quot;: &quot;test&quot;" in html  # the body sent
        assert Webhook(webhook_secret(key)).verify(down.hits[0].body, down.hits[0].headers)

        resend = reverse("api_key_webhook_resend", args=[key.pk, delivery.pk])
        with django_capture_on_commit_callbacks(execute=True):
            alice_client.post(resend, headers={"HX-Request": "true"})
        assert len(down.hits) == 2
        assert down.hits[1].headers["webhook-id"] == delivery.event_id
        html = alice_client.get(hooks_page).content.decode()
        assert "Delivered" in html and "HTTP 200" in html
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DELIVERED
    finally:
        down.close()


def test_a_private_test_address_is_refused_on_the_page(alice_client, alice_key, settings):
    settings.FETCH_ALLOW_LOOPBACK = False
    test = reverse("api_key_webhook_test", args=[alice_key[0].pk])
    answer = alice_client.post(test, {"url": "http://10.0.0.7/hook"})
    assert answer.status_code == 422
    assert "private network" in answer.content.decode()
    assert not WebhookDelivery.objects.exists()


def test_rotating_shows_the_new_secret_and_the_grace(alice_client, alice_key, hooks_page):
    key = alice_key[0]
    old = webhook_secret(key)
    assert old in alice_client.get(hooks_page).content.decode()
    rotate = reverse("api_key_webhook_rotate", args=[key.pk])
    html = alice_client.post(rotate, follow=True).content.decode()
    key.refresh_from_db()
    new = webhook_secret(key)
    assert new != old and new in html and old not in html
    assert 'id="secret-grace"' in html


def test_each_key_has_its_own_secret(alice, alice_key):
    other, _ = api_key_create(owner=alice, name="other")
    assert webhook_secret(other) != webhook_secret(alice_key[0])


def test_staff_see_failed_deliveries_on_the_dashboard(staff_client, alice_key):
    key = alice_key[0]
    for n, status in enumerate(["failed", "failed", "delivered", "pending"]):
        WebhookDelivery.objects.create(
            api_key=key,
            url=f"https://hooks.example.com/{n}",
            event_id=f"msg_dash{n}",
            payload={"id": str(n)},
            status=status,
            attempts=12,
            last_status_code=503,
            last_error="The receiver answered HTTP 503.",
        )
    html = staff_client.get(reverse("admin:jobs_job_dashboard")).content.decode()
    section = html[html.index('id="failed-webhooks"') :]
    assert "Failed webhooks: 2 deliveries given up" in section
    assert "msg_dash0" in section and "msg_dash1" in section
    assert "msg_dash2" not in section and "msg_dash3" not in section
    assert "HTTP 503" in section and key.owner.get_username() in section
