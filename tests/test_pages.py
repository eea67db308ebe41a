"""The layout and the plain pages: who gets in, what the navigation shows,
and the member's balances in every page."""

import re

import pytest
from django.urls import reverse

from jobs.credits.ledger import credits_grant, credits_hold
from tests.conftest import PASSWORD
from tests.page_support import text

pytestmark = pytest.mark.django_db

MEMBER_PAGES = ["studio", "gallery", "credits", "api_keys", "api_guide", "password_change"]


def balances_strip(response) -> str:
    """The layout's balances, as words."""
    html = response.content.decode()
    found = re.search(r'<section class="balances".*?</section>', html, re.S)
    assert found, "the layout has no balances"
    return text(response, found.group(0))


@pytest.mark.parametrize("name", MEMBER_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_anonymous_visitors_cannot_reach_a_revoke_page(client, alice):
    from jobs.accounts.api_keys import api_key_create

    key, _ = api_key_create(owner=alice, name="")
    url = reverse("api_key_revoke", args=[key.pk])
    assert client.get(url).status_code == 302
    assert client.post(url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_sign_in_page_has_no_sign_up_and_says_who_creates_accounts(client):
    response = client.get(reverse("login"))
    page = text(response)
    assert response.status_code == 200
    assert "Sign in" in page
    assert "accounts are created by staff" in page
    assert not re.search(r"sign up|register|create an account", page, re.I)
    assert '<label for="id_username">Username</label>' in response.content.decode()
    assert '<label for="id_password">Password</label>' in response.content.decode()


def test_a_member_signs_in_and_lands_in_the_studio(client, alice):
    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("studio")
    assert "Alice" in text(response)


def test_wrong_credentials_get_a_clear_error_tied_to_the_fields(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Those details didn’t work." in text(response)
    assert 'id="login-error" role="alert"' in html
    assert re.search(r'<input[^>]*name="password"[^>]*aria-describedby="login-error"', html)
    assert re.search(r'<input[^>]*name="username"[^>]*aria-invalid="true"', html)
    assert "_auth_user_id" not in client.session


def test_an_empty_form_says_which_field_is_missing(client):
    response = client.post(reverse("login"), {"username": "", "password": ""})
    html = response.content.decode()
    assert 'id="id_username_error"' in html
    assert re.search(r'<input[^>]*aria-describedby="id_username_error"', html)


def test_sign_out_is_a_post_and_says_so(alice_client):
    page = alice_client.get(reverse("studio")).content.decode()
    assert re.search(r'<form method="post" action="/logout/">', page)

    response = alice_client.post(
        reverse("logout"), {"next": f"{reverse('login')}?signed_out=1"}, follow=True
    )
    assert "You’re signed out." in text(response)
    assert alice_client.get(reverse("studio")).status_code == 302


def test_a_member_changes_their_password(alice_client, alice):
    page = alice_client.get(reverse("password_change"))
    assert '<label for="id_old_password">Old password</label>' in page.content.decode()
    response = alice_client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer new passphrase",
            "new_password2": "a much longer new passphrase",
        },
        follow=True,
    )
    assert "Your password has been changed" in text(response)
    alice.refresh_from_db()
    assert alice.check_password("a much longer new passphrase")


def test_a_wrong_current_password_is_reported_on_its_field(alice_client):
    response = alice_client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": "x" * 20, "new_password2": "x" * 20},
    )
    html = response.content.decode()
    assert 'id="id_old_password_error"' in html
    assert re.search(r'<input[^>]*name="old_password"[^>]*aria-invalid="true"', html)


def test_the_navigation_shows_admin_to_staff_only(client, alice, staff):
    client.force_login(alice)
    page = text(client.get(reverse("studio")))
    for item in ("Studio", "Gallery", "Credits", "API keys", "API"):
        assert item in page
    assert "Admin" not in page

    client.force_login(staff)
    html = client.get(reverse("studio")).content.decode()
    assert f'href="{reverse("admin:index")}"' in html


def test_the_current_page_is_marked_in_the_navigation(alice_client):
    html = alice_client.get(reverse("credits")).content.decode()
    assert re.search(r'href="/credits/" aria-current="page"', html)
    assert not re.search(r'href="/" aria-current="page"', html)


def test_the_layout_shows_both_balances_with_units(alice_client, alice, staff):
    credits_grant(user=alice, pool="studio", amount=1250, key="g1", reason="Start", by=staff)
    credits_grant(user=alice, pool="api", amount=40, key="g2", reason="Start", by=staff)
    for name in ("studio", "gallery", "credits", "api_keys", "password_change"):
        strip = balances_strip(alice_client.get(reverse(name)))
        assert strip == "Available credits Studio 1,250 credits API 40 credits"


def test_the_layout_shows_held_credits_when_there_are_some(alice_client, alice, staff):
    credits_grant(user=alice, pool="studio", amount=500, key="g1", reason="Start", by=staff)
    credits_hold(user=alice, pool="studio", amount=120, key="h1")
    strip = balances_strip(alice_client.get(reverse("gallery")))
    assert strip == "Available credits Studio 380 credits 120 held API 0 credits"


def test_every_page_carries_the_csrf_header_for_htmx_and_a_skip_link(alice_client):
    html = alice_client.get(reverse("studio")).content.decode()
    assert re.search(r"<body hx-headers='\{\"x-csrftoken\": \"[^\"]+\"\}'>", html)
    assert '<a class="skip-link" href="#main">' in html
    assert 'id="main"' in html
    assert "django_htmx/htmx-2" in html


def test_the_studio_offers_the_dialog_form_and_says_when_the_sandbox_is_the_provider(
    alice_client, settings
):
    settings.JOYPIX_BASE_URL = settings.JOYPIX_API_KEY = ""
    page = text(alice_client.get(reverse("studio")))
    assert "No jobs yet" in page
    assert "New dialog video" in page
    for label in ("Photo", "Left speaker", "Right speaker", "Resolution"):
        assert label in page
    assert "Sandbox provider." in page
    assert "Add both audio clips to see the exact cost." in page

    settings.JOYPIX_BASE_URL = "https://api.joypix.example"
    settings.JOYPIX_API_KEY = "jp-real-key"
    page = text(alice_client.get(reverse("studio")))
    assert "No account is set up for lipsync.studio, so its jobs go" in page
    assert "JoyPix" not in page.split("Sandbox provider.", 1)[1].split("real provider.", 1)[0]

    settings.LIPSYNC_STUDIO_BASE_URL = "https://lipsync.example"
    settings.LIPSYNC_STUDIO_API_KEY = "sk_real_key"
    response = alice_client.get(reverse("studio"))
    assert "Sandbox provider." not in text(response)
    assert "jp-real-key" not in response.content.decode()
    assert "sk_real_key" not in response.content.decode()


def test_the_gallery_says_nothing_is_shared_yet(alice_client):
    assert "Nothing shared yet" in text(alice_client.get(reverse("gallery")))


def test_messages_are_dismissible_notices_with_a_status_role(alice_client, alice):
    from jobs.accounts.api_keys import api_key_create

    key, _ = api_key_create(owner=alice, name="Old")
    response = alice_client.post(reverse("api_key_revoke", args=[key.pk]), follow=True)
    html = response.content.decode()
    assert re.search(r'<div class="notice notice--success" role="status">', html)
    assert "data-dismiss" in html


def test_the_favicon_is_the_studios_mark_and_is_cached(client):
    # Browsers ask for it on pages that name no icon (the admin's), signed in or not.
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert "max-age=86400" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 200
