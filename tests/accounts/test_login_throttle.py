"""Signing in with wrong passwords: the account pauses at its address after
LOGIN_FAILURE_LIMIT of them (5), an address after LOGIN_ADDRESS_FAILURE_LIMIT
whatever the accounts (20), for LOGIN_COOLOFF_MINUTES (15); the member is told
when to try again, on our sign-in page and the admin's, and staff can unlock."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

OFFICE = "203.0.113.7"
HOME = "198.51.100.20"


def sign_in(client, username, password=PASSWORD, *, address=OFFICE, url=None, **headers):
    return client.post(
        url or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username, times, **kwargs):
    return [sign_in(client, username, "not the password", **kwargs) for _ in range(times)]


def travel(minutes: float) -> None:
    """Time passes for the recorded failures (axes reads them from the database)."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes))


def test_wrong_passwords_pause_the_account_and_then_even_the_right_one_is_refused(client, alice):
    answers = fail(client, "alice", 5)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert "Those details didn’t work." in answers[0].content.decode()
    locked = answers[-1].content.decode()
    assert "Signing in is paused." in locked
    assert "Try again in 15 minutes" in locked

    response = sign_in(client, "alice")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Signing in is paused." in page
    assert "Try again in 15 minutes" in page
    assert 'value="alice"' in page  # the form keeps the username, nothing else
    assert not signed_in(client)
    assert client.get(reverse("studio")).status_code == 302


def test_the_pause_ends_after_the_cooloff_and_tries_during_it_do_not_extend_it(client, alice):
    fail(client, "alice", 5)
    travel(10)
    assert "Try again in 5 minutes" in fail(client, "alice", 1)[0].content.decode()
    travel(4.5)
    assert "Try again in 1 minute," in sign_in(client, "alice").content.decode()
    travel(1)

    response = sign_in(client, "alice")
    assert response.status_code == 302
    assert response["Location"] == reverse("studio")
    assert signed_in(client)


def test_a_sign_in_starts_the_count_again(client, alice):
    fail(client, "alice", 4)
    assert sign_in(client, "alice").status_code == 302
    client.logout()
    assert [a.status_code for a in fail(client, "alice", 4)] == [200] * 4
    assert sign_in(client, "alice").status_code == 302


def test_another_member_at_the_same_address_still_signs_in(client, alice, bob):
    fail(client, "alice", 5)
    assert sign_in(client, "bob").status_code == 302


def test_the_paused_member_still_signs_in_from_elsewhere(client, alice):
    """Someone guessing from their own address cannot lock the member out."""
    fail(client, "alice", 5, address=OFFICE)
    assert sign_in(client, "alice", address=OFFICE).status_code == 429
    assert sign_in(client, "alice", address=HOME).status_code == 302


def test_many_wrong_passwords_from_one_address_pause_it_for_every_account(client, alice, bob):
    names = ["alice", "carol", "dave", "erin", "frank"]
    answers = [a for name in names for a in fail(client, name, 4)]  # 20, none 5 on one account
    assert [a.status_code for a in answers] == [200] * 19 + [429]

    refused = sign_in(client, "bob")
    assert refused.status_code == 429
    assert "Try again in 15 minutes" in refused.content.decode()
    assert sign_in(client, "bob", address=HOME).status_code == 302


def test_the_admin_sign_in_is_paused_too_and_says_so_in_the_admin(client, staff):
    url = reverse("admin:login")
    answers = fail(client, "sam", 5, url=url)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]

    response = sign_in(client, "sam", url=url)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Lipsync Studio admin" in page  # the admin's own page
    assert "Try again in 15 minutes" in page
    assert "Please enter the correct username" not in page
    assert not signed_in(client)
    # Our sign-in page counts the same failures.
    assert sign_in(client, "sam").status_code == 429


def test_staff_see_the_attempts_and_unlock_a_member_in_the_admin(client, alice, staff):
    fail(client, "alice", 5)
    attempt = AccessAttempt.objects.get(username="alice")
    assert "not the password" not in attempt.post_data  # what staff see: never the password

    client.force_login(staff)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    assert "Locked Out" in listing.content.decode()
    failures = client.get(reverse("admin:axes_accessfailurelog_changelist"))
    assert failures.status_code == 200
    assert failures.content.decode().count(OFFICE) >= 5

    delete = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert client.get(delete).status_code == 200
    assert client.post(delete, {"post": "yes"}).status_code == 302
    client.logout()

    assert sign_in(client, "alice").status_code == 302


def test_behind_no_trusted_proxy_x_forwarded_for_is_ignored(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    spoofed = [{"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}"} for n in range(5)]
    answers = [sign_in(client, "alice", "wrong", **headers) for headers in spoofed]
    assert answers[-1].status_code == 429
    assert sign_in(client, "alice", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_a_trusted_proxy_the_address_it_saw_counts(client, alice, settings):
    """The proxy appends the address it saw; what the client wrote before it is ignored."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    attacker = [
        {"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}, {OFFICE}", "address": proxy} for n in range(5)
    ]
    answers = [sign_in(client, "alice", "wrong", **kwargs) for kwargs in attacker]
    assert answers[-1].status_code == 429
    assert sign_in(client, "alice", address=proxy, HTTP_X_FORWARDED_FOR=OFFICE).status_code == 429
    # The member, behind the same proxy from home, is let in.
    assert sign_in(client, "alice", address=proxy, HTTP_X_FORWARDED_FOR=HOME).status_code == 302
