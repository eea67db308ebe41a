"""The Credits page: a member's balances, open holds and history, and only theirs."""

import re

import pytest
from django.urls import reverse

from jobs.credits.ledger import (
    credits_adjust,
    credits_capture,
    credits_grant,
    credits_hold,
    credits_release,
)
from tests.page_support import text

pytestmark = pytest.mark.django_db

CREDITS = reverse("credits")


def rows(response) -> list[str]:
    """The history table's rows, as words."""
    html = response.content.decode()
    table = re.search(r'<table class="table table--stack ledger-table">.*?</table>', html, re.S)
    if table is None:
        return []
    body = table.group(0).split("<tbody>", 1)[1]
    return [text(response, row) for row in re.findall(r"<tr>.*?</tr>", body, re.S)]


def test_a_new_member_sees_zero_balances_and_friendly_empty_states(alice_client):
    response = alice_client.get(CREDITS)
    page = text(response)
    assert response.status_code == 200
    assert "Studio credits For jobs started in the studio 0 credits available" in page
    assert "API credits For jobs made with an API key 0 credits available" in page
    assert "not interchangeable" in page
    assert "Nothing on hold." in page
    assert "No credit history yet" in page


def test_a_grant_shows_with_its_amount_reason_and_balance(alice_client, alice, staff):
    credits_grant(user=alice, pool="studio", amount=1250, key="g1", reason="Welcome", by=staff)
    response = alice_client.get(CREDITS)
    page = text(response)
    assert "Studio credits For jobs started in the studio 1,250 credits available" in page
    assert "Posted balance 1,250 credits On hold 0 credits" in page
    [row] = rows(response)
    assert re.fullmatch(
        r"\d{1,2} \w{3} \d{4}, \d\d:\d\d Grant Studio Welcome Added by staff \+1,250 "
        r"Available after 1,250",
        row,
    )


def test_a_member_never_sees_another_members_ledger(alice_client, alice, bob, staff):
    credits_grant(user=alice, pool="studio", amount=100, key="a1", reason="For Alice", by=staff)
    credits_grant(user=bob, pool="studio", amount=777, key="b1", reason="For Bob only", by=staff)
    credits_hold(user=bob, pool="studio", amount=70, key="b2", reason="Bob's job")
    page = text(alice_client.get(CREDITS))
    assert "For Alice" in page
    assert "For Bob only" not in page
    assert "Bob's job" not in page
    assert "777" not in page
    assert "Nothing on hold." in page


def test_holds_charges_and_releases_read_as_changes_to_available(alice_client, alice, staff):
    credits_grant(user=alice, pool="studio", amount=500, key="g", reason="Start", by=staff)
    hold = credits_hold(user=alice, pool="studio", amount=120, key="h1", reason="Dialog 720p")
    credits_capture(hold=hold, amount=90, key="c1")
    failed = credits_hold(user=alice, pool="studio", amount=60, key="h2")
    credits_release(hold=failed, key="r2", reason="Provider failed")
    credits_adjust(user=alice, pool="studio", amount=-30, key="a1", reason="Fix", by=staff)

    history = rows(alice_client.get(CREDITS))
    changes = [re.search(r"(\S+) Available after (\S+)$", row).groups() for row in history]
    assert changes == [
        ("−30", "380"),
        ("+60", "410"),
        ("−60", "350"),
        ("+30", "410"),
        ("−120", "380"),
        ("+500", "500"),
    ]
    assert "Capture Studio Charged 90 of 120 held; 30 returned" in history[3]
    assert "Release Studio Provider failed Hold returned" in history[1]
    assert "Adjustment Studio Fix Corrected by staff" in history[0]


def test_open_holds_show_amount_and_since_when(alice_client, alice, staff):
    credits_grant(user=alice, pool="api", amount=500, key="g", reason="Start", by=staff)
    credits_hold(user=alice, pool="api", amount=45, key="h1", reason="Talking photo")
    response = alice_client.get(CREDITS)
    page = text(response)
    assert "Nothing on hold." not in page
    assert re.search(r"API Talking photo 45 credits", page)
    assert "API credits For jobs made with an API key 455 credits available" in page
    assert "Posted balance 500 credits On hold 45 credits" in page
    assert 'data-label="Since"><time datetime="' in response.content.decode()


def test_the_history_is_paginated(alice_client, alice, staff, settings):
    settings.LEDGER_PAGE_SIZE = 3
    for i in range(1, 8):
        credits_grant(
            user=alice, pool="studio", amount=i, key=f"g{i}", reason=f"Grant {i}", by=staff
        )

    first = alice_client.get(CREDITS)
    assert [row.split(" Studio ")[1].split(" Added")[0] for row in rows(first)] == [
        "Grant 7",
        "Grant 6",
        "Grant 5",
    ]
    assert "Page 1 of 3 · 1–3 of 7 entries" in text(first)
    assert 'href="?page=2"' in first.content.decode()

    last = alice_client.get(CREDITS, {"page": 3})
    assert [row.split(" Studio ")[1].split(" Added")[0] for row in rows(last)] == ["Grant 1"]
    assert "Page 3 of 3" in text(last)
    assert 'href="?page=2"' in last.content.decode()

    # A page number past the end, or not a number, shows a real page.
    assert "Page 3 of 3" in text(alice_client.get(CREDITS, {"page": 99}))
    assert "Page 1 of 3" in text(alice_client.get(CREDITS, {"page": "x"}))


def test_htmx_pagination_gets_only_the_history(alice_client, alice, staff, settings):
    settings.LEDGER_PAGE_SIZE = 2
    for i in range(1, 4):
        credits_grant(
            user=alice, pool="studio", amount=i, key=f"g{i}", reason=f"Grant {i}", by=staff
        )
    htmx = {"HX-Request": "true", "HX-Target": "ledger-page"}
    response = alice_client.get(CREDITS, {"page": 2}, headers=htmx)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="ledger-page">')
    assert "<html" not in html
    assert "Grant 1" in html
    assert "HX-Request" in response["Vary"]

    # htmx restoring history asks for the whole page.
    restore = alice_client.get(
        CREDITS,
        {"page": 2},
        headers={
            "HX-Request": "true",
            "HX-History-Restore-Request": "true",
            "HX-Target": "ledger-page",
        },
    )
    assert "<html" in restore.content.decode()


def test_the_history_can_show_one_pool(alice_client, alice, staff, settings):
    settings.LEDGER_PAGE_SIZE = 2
    for i in range(3):
        credits_grant(user=alice, pool="api", amount=10, key=f"api{i}", reason=f"API {i}", by=staff)
    credits_grant(user=alice, pool="studio", amount=5, key="s", reason="Studio one", by=staff)

    studio_only = alice_client.get(CREDITS, {"pool": "studio"})
    assert [row.split(" Added")[0].split(" Studio ", 1)[1] for row in rows(studio_only)] == [
        "Studio one"
    ]
    api_page_2 = alice_client.get(CREDITS, {"pool": "api", "page": 2})
    assert len(rows(api_page_2)) == 1
    assert 'href="?pool=api&amp;page=1"' in api_page_2.content.decode()

    # An unknown pool shows both.
    assert "Page 1 of 2" in text(alice_client.get(CREDITS, {"pool": "nope"}))


def test_an_empty_pool_says_so(alice_client, alice, staff):
    credits_grant(user=alice, pool="studio", amount=5, key="s", reason="Studio one", by=staff)
    assert "No API credit history yet" in text(alice_client.get(CREDITS, {"pool": "api"}))
