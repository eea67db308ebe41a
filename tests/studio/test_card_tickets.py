"""The card ticket (jobs/studio/card_tickets.py): an open Studio page's pass
to the cheap "nothing changed", answered without loading its session or its
member. Only a ticket that is genuine, fresh and shown with the session
cookie it was issued for is taken; anything else goes the signed-in way, and
a ticket never gets a card.

Two set-ups, as for the card stamps: the stamp from the database (the
default without Redis: one query) and from a shared cache (no query; Redis
when REDIS_URL is set, else local memory)."""

import os
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import empty

from jobs.pipeline import lifecycle
from jobs.studio import card_tickets
from tests.factories import make_job
from tests.stamps_support import card_ids, last_change_ago, ms, stamps_in_shared_cache

pytestmark = pytest.mark.django_db(transaction=True)  # so on-commit stamp bumps run


@pytest.fixture(params=["database", "cache"])
def stamps(request, settings):
    """Where the stamps live; the value is the queries the ticket's answer makes."""
    if request.param == "database":
        settings.CARD_STAMPS_IN_CACHE = False
        return 1  # the member's newest updated_at, from the index
    stamps_in_shared_cache(settings, redis_url=os.environ.get("REDIS_URL"), name="tickets")
    return 0


@pytest.fixture
def live_job(alice):
    return make_job(alice, state="processing", held=None, submitted_after=timedelta(0))


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client


def page_ticket(client) -> str:
    """The ticket the Studio page gives its poller."""
    html = client.get(reverse("studio")).content.decode()
    found = re.search(r'<div id="cards-poller"[^>]* data-ticket="([^"]+)"', html)
    assert found, "the poller carries no ticket"
    return found.group(1)


def ask(client, since: int, ticket: str | None = None, *, job=None):
    params = {"since": since}
    if job is not None:
        params |= {"newest": ms(job.created_at), "oldest": ms(job.created_at)}
    headers = {card_tickets.HEADER: ticket} if ticket else {}
    return client.get(reverse("studio_cards"), params, headers=headers)


def session_cookie(client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def took_signed_in_way(response) -> bool:
    """The signed-in way loads the session and renews the ticket."""
    return response.wsgi_request.session.accessed and card_tickets.HEADER in response


def test_with_its_ticket_nothing_changed_loads_neither_session_nor_member(
    stamps, alice_client, alice, live_job, django_assert_num_queries
):
    ticket = page_ticket(alice_client)
    last_change_ago(alice, 10)
    since = ms(timezone.now())

    with django_assert_num_queries(stamps):
        response = ask(alice_client, since, ticket, job=live_job)

    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Cards-Since"] == str(since)  # the cursor stays
    assert response["X-Cards-Polling"] == "1"
    request = response.wsgi_request
    assert request.session.accessed is False
    assert request.user._wrapped is empty  # never loaded
    # Nothing marks the answer as per session: no Vary: Cookie, no cookie set.
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    assert card_tickets.HEADER not in response  # only the signed-in way renews it


def test_every_signed_in_answer_renews_the_ticket(stamps, alice_client, alice, live_job):
    last_change_ago(alice, 10)
    since = ms(timezone.now())
    lifecycle.job_fail(live_job, message="The provider refused the photo.")

    full = ask(alice_client, since, job=live_job)  # no ticket: the signed-in way
    assert card_ids(full.content.decode()) == [live_job.pk]
    renewed = full[card_tickets.HEADER]

    last_change_ago(alice, 10)
    cheap = ask(alice_client, ms(timezone.now()), renewed, job=live_job)
    assert cheap.content == b""
    assert not cheap.wsgi_request.session.accessed


def test_a_ticket_never_hides_a_change(stamps, alice_client, alice, live_job):
    ticket = page_ticket(alice_client)
    last_change_ago(alice, 10)
    since = ms(timezone.now())
    assert ask(alice_client, since, ticket, job=live_job).content == b""

    lifecycle.job_fail(live_job, message="The provider refused the photo.")
    response = ask(alice_client, since, ticket, job=live_job)

    assert card_ids(response.content.decode()) == [live_job.pk]
    assert response["X-Cards-Polling"] == "0"


def test_another_members_ticket_with_my_cookie_gets_me_my_own_cards(
    stamps, alice_client, bob_client, alice, bob, live_job
):
    """Bob's cards did not change, mine did: Bob's ticket must not tell my
    page "nothing changed"."""
    bobs = page_ticket(bob_client)
    last_change_ago(bob, 10)
    since = ms(timezone.now())
    lifecycle.job_fail(live_job, message="The provider refused the photo.")

    response = ask(alice_client, since, bobs, job=live_job)

    assert card_ids(response.content.decode()) == [live_job.pk]
    assert took_signed_in_way(response)


def test_a_forged_ticket_takes_the_signed_in_way(stamps, alice_client, alice, bob, live_job):
    """Signed with another key, naming Bob (whose cards did not change)."""
    forged = signing.TimestampSigner(
        key="not-the-studio-secret-" * 3,
        salt=f"{card_tickets.SALT}:{session_cookie(alice_client)}",
    ).sign(str(bob.pk))
    last_change_ago(bob, 10)
    since = ms(timezone.now())
    lifecycle.job_fail(live_job, message="The provider refused the photo.")

    response = ask(alice_client, since, forged, job=live_job)

    assert card_ids(response.content.decode()) == [live_job.pk]


def test_a_tampered_ticket_takes_the_signed_in_way(stamps, alice_client, alice, bob, live_job):
    """My genuine ticket with Bob's id in place of mine."""
    mine = page_ticket(alice_client)
    assert mine.startswith(f"{alice.pk}:")
    tampered = f"{bob.pk}:" + mine.removeprefix(f"{alice.pk}:")
    last_change_ago(bob, 10)
    since = ms(timezone.now())
    lifecycle.job_fail(live_job, message="The provider refused the photo.")

    response = ask(alice_client, since, tampered, job=live_job)

    assert card_ids(response.content.decode()) == [live_job.pk]


def test_an_expired_ticket_takes_the_signed_in_way(
    stamps, alice_client, alice, live_job, monkeypatch
):
    issued = timezone.now() - card_tickets.MAX_AGE - timedelta(seconds=5)
    with monkeypatch.context() as patched:
        patched.setattr(signing, "time", SimpleNamespace(time=issued.timestamp))
        old = page_ticket(alice_client)
    last_change_ago(alice, 10)

    response = ask(alice_client, ms(timezone.now()), old, job=live_job)

    assert response.content == b""  # still nothing changed...
    assert took_signed_in_way(response)  # ...but told the signed-in way, with a new ticket
    assert response[card_tickets.HEADER] != old


def test_after_signing_out_a_ticket_gets_no_card(stamps, alice_client, alice, live_job):
    """Someone who kept the cookie and the ticket after the member signed
    out: at most "nothing changed" (card_tickets says why that is
    acceptable), never a card; a change sends them to sign in."""
    ticket = page_ticket(alice_client)
    kept = Client()
    kept.cookies[django_settings.SESSION_COOKIE_NAME] = session_cookie(alice_client)
    alice_client.logout()
    last_change_ago(alice, 10)
    since = ms(timezone.now())

    assert ask(kept, since, ticket, job=live_job).content == b""

    lifecycle.job_fail(live_job, message="The provider refused the photo.")
    response = ask(kept, since, ticket, job=live_job)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "refused" not in response.content.decode()


def test_a_signed_out_page_without_a_ticket_is_sent_to_sign_in(client, alice, live_job):
    response = ask(client, ms(timezone.now()), job=live_job)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_ticket_without_its_session_cookie_is_sent_to_sign_in(
    stamps, alice_client, alice, live_job
):
    ticket = page_ticket(alice_client)
    last_change_ago(alice, 10)

    response = ask(Client(), ms(timezone.now()), ticket, job=live_job)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
