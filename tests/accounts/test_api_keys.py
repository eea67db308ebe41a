"""Personal API keys: shown once, stored hashed, listed by prefix, revocable,
and only ever the owner's."""

import hashlib
import logging
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.accounts.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from jobs.models import ApiKey
from tests.page_support import text

pytestmark = pytest.mark.django_db

KEYS = reverse("api_keys")
KEY_PATTERN = re.compile(r"sk_[a-z0-9]{8}_[A-Za-z0-9_-]{32,}")


def form_token(client) -> str:
    html = client.get(KEYS).content.decode()
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def create(client, name="") -> tuple[str, str]:
    """Create a key through the page; return the page's HTML and the key shown."""
    response = client.post(KEYS, {"name": name, "form_token": form_token(client)})
    assert response.status_code == 201
    html = response.content.decode()
    shown = KEY_PATTERN.findall(html)
    assert len(set(shown)) == 1, "the new key is shown, once"
    return html, shown[0]


# --- The service -----------------------------------------------------------------


def test_a_created_key_has_the_documented_shape_and_only_its_hash_is_stored(alice):
    key, raw = api_key_create(owner=alice, name="  Render script  ")
    assert KEY_PATTERN.fullmatch(raw)
    assert raw.startswith(f"sk_{key.prefix}_")
    assert len(raw.split("_", 2)[2]) >= 32
    assert key.name == "Render script"
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw.split("_", 2)[2]
    for value in (stored.name, stored.prefix, stored.secret_hash):
        assert secret not in value


def test_two_keys_never_share_a_prefix_or_secret(alice):
    made = [api_key_create(owner=alice, name="") for _ in range(20)]
    assert len({key.prefix for key, _ in made}) == 20
    assert len({raw for _, raw in made}) == 20


def test_authenticate_accepts_the_right_key_and_marks_it_used(alice):
    key, raw = api_key_create(owner=alice, name="")
    found = api_key_authenticate(raw=raw)
    assert found == key
    assert found.owner == alice
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # wrong secret
        lambda raw: raw[:-1],  # truncated
        lambda raw: raw.replace("sk_", "pk_", 1),
        lambda raw: "sk_" + "x" * 8 + "_" + raw.split("_", 2)[2],  # unknown prefix
        lambda raw: raw.split("_", 2)[0] + "_" + raw.split("_", 2)[1],  # prefix only
        lambda raw: "",
        lambda raw: "Bearer " + raw,
    ],
)
def test_authenticate_refuses_a_wrong_key(alice, mangle):
    _, raw = api_key_create(owner=alice, name="")
    assert api_key_authenticate(raw=mangle(raw)) is None


def test_authenticate_refuses_a_revoked_key(alice):
    key, raw = api_key_create(owner=alice, name="")
    api_key_revoke(key=key)
    assert key.revoked_at is not None
    assert api_key_authenticate(raw=raw) is None


def test_authenticate_refuses_the_key_of_a_deactivated_member(alice):
    _, raw = api_key_create(owner=alice, name="")
    alice.is_active = False
    alice.save()
    assert api_key_authenticate(raw=raw) is None


def test_last_used_is_written_at_most_once_a_minute(alice, django_assert_num_queries):
    key, raw = api_key_create(owner=alice, name="")
    api_key_authenticate(raw=raw)
    key.refresh_from_db()
    first = key.last_used_at

    with django_assert_num_queries(1):  # the lookup, no write
        api_key_authenticate(raw=raw)
    key.refresh_from_db()
    assert key.last_used_at == first

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(seconds=61))
    api_key_authenticate(raw=raw)
    key.refresh_from_db()
    assert key.last_used_at > first - timedelta(seconds=1)
    assert key.last_used_at >= timezone.now() - timedelta(seconds=5)


def test_revoking_twice_keeps_the_first_time(alice):
    key, _ = api_key_create(owner=alice, name="")
    api_key_revoke(key=key)
    first = key.revoked_at
    api_key_revoke(key=key)
    key.refresh_from_db()
    assert key.revoked_at == first


# --- The page ----------------------------------------------------------------------


def test_no_keys_yet_reads_well(alice_client):
    page = text(alice_client.get(KEYS))
    assert "No API keys yet" in page
    assert "API credits" in page


def test_a_new_key_is_shown_once_with_a_warning_and_a_copy_button(alice_client, alice):
    html, raw = create(alice_client, name="Nightly render")
    assert "This is the only time it is shown." in text(None, html)
    assert re.search(r'<button type="button"[^>]*data-copy="#new-key-value"', html)
    assert '<code id="new-key-value"' in html

    key = ApiKey.objects.get(owner=alice)
    assert key.name == "Nightly render"
    assert key.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert api_key_authenticate(raw=raw) == key

    # A reload, a later visit, the revoke page: the key is gone for good.
    secret = raw.split("_", 2)[2]
    for url in (KEYS, reverse("api_key_revoke", args=[key.pk]), reverse("credits")):
        later = alice_client.get(url).content.decode()
        assert secret not in later
        assert "Copy your new key now" not in later
    assert secret not in str(dict(alice_client.session))


def test_the_response_with_a_new_key_is_never_cached(alice_client):
    response = alice_client.post(KEYS, {"name": "", "form_token": form_token(alice_client)})
    assert "no-store" in response["Cache-Control"]


def test_the_key_never_reaches_the_logs(alice_client, caplog):
    with caplog.at_level(logging.DEBUG):
        _, raw = create(alice_client, name="Logged?")
        api_key_authenticate(raw=raw)
    assert raw.split("_", 2)[2] not in caplog.text


def test_resending_the_form_makes_no_second_key_and_shows_nothing(alice_client, alice):
    token = form_token(alice_client)
    first = alice_client.post(KEYS, {"name": "Once", "form_token": token})
    assert first.status_code == 201

    again = alice_client.post(KEYS, {"name": "Once", "form_token": token}, follow=True)
    assert ApiKey.objects.filter(owner=alice).count() == 1
    page = text(again)
    assert "no new key was made" in page
    assert "Copy your new key now" not in page
    assert not KEY_PATTERN.search(again.content.decode())


def test_a_too_long_name_is_refused_on_its_field(alice_client, alice):
    response = alice_client.post(KEYS, {"name": "x" * 101, "form_token": form_token(alice_client)})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_name_error"' in html
    assert re.search(
        r'<input[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*id_name_error', html
    )
    assert not ApiKey.objects.filter(owner=alice).exists()


def test_the_list_shows_the_prefix_only(alice_client, alice):
    _, raw = create(alice_client, name="Laptop")
    key = ApiKey.objects.get(owner=alice)
    page = alice_client.get(KEYS)
    html = page.content.decode()
    assert f"<code>sk_{key.prefix}_…</code>" in html
    assert raw.split("_", 2)[2] not in html
    row = text(None, re.search(r'<tr id="key-\d+".*?</tr>', html, re.S).group(0))
    assert re.fullmatch(
        rf"Laptop sk_{key.prefix}_… \d{{1,2}} \w{{3}} \d{{4}}, \d\d:\d\d Never "
        r"This month: 0 jobs, 0 charged, 0 returned "
        r"Last 12 months: 0 jobs, 0 charged, 0 returned "
        r"Spent this month: 0 credits \(no budget\) Never expires "
        r"All kinds of video; all providers 120 requests/min, 20 jobs in flight Active "
        rf"Webhooks of Laptop \(sk_{key.prefix}_…\) Limits… Laptop \(sk_{key.prefix}_…\) "
        rf"Revoke… Laptop \(sk_{key.prefix}_…\)",
        row,
    )


def test_revoking_asks_first_then_refuses_the_key(alice_client, alice):
    key, raw = api_key_create(owner=alice, name="Old laptop")
    url = reverse("api_key_revoke", args=[key.pk])

    confirm = alice_client.get(url)
    assert "Revoke this key?" in text(confirm)
    assert "stop working at once" in text(confirm)
    key.refresh_from_db()
    assert key.revoked_at is None

    done = alice_client.post(url, follow=True)
    assert done.redirect_chain[-1][0] == KEYS
    assert "Revoked “Old laptop”" in text(done)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(raw=raw) is None
    row = re.search(r'<tr id="key-\d+" class="is-revoked">.*?</tr>', done.content.decode(), re.S)
    assert "Revoked" in text(None, row.group(0))
    assert "Revoke…" not in text(None, row.group(0))


def test_another_members_key_is_not_found(alice_client, bob):
    key, raw = api_key_create(owner=bob, name="Bob's script")
    url = reverse("api_key_revoke", args=[key.pk])
    assert alice_client.get(url).status_code == 404
    assert alice_client.post(url).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert "Bob's script" not in text(alice_client.get(KEYS))
    assert api_key_authenticate(raw=raw) == key
