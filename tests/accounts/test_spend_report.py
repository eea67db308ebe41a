"""A member's spend report on the Credits page: monthly charged and returned
by pool, mode, provider and key, a server-drawn chart, and a CSV of their own
ledger only."""

import csv
import io
from datetime import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.accounts.api_keys import api_key_create
from jobs.credits.usage import member_spend_by_month
from jobs.models import LedgerEntry, Pool
from tests.page_support import text
from tests.spend_support import funded, job_with_money

pytestmark = pytest.mark.django_db

CREDITS = reverse("credits")
CSV = reverse("credits_ledger_csv")


def months_ago(n: int, day: int = 10) -> datetime:
    now = timezone.localtime()
    year, month = now.year, now.month - n
    while month < 1:
        year, month = year - 1, month + 12
    return timezone.make_aware(datetime(year, month, day, 12))


@pytest.fixture
def history(alice, bob):
    funded(alice)
    funded(alice, pool=Pool.STUDIO)
    funded(bob)
    key, _ = api_key_create(owner=alice, name="nightly")
    two_ago = months_ago(2)
    charged = job_with_money(alice, key=key, held=40, charged=30, at=two_ago)
    refunded = job_with_money(alice, key=key, held=25, charged=25, refunded=25, at=two_ago)
    job_with_money(alice, held=60, charged=60, pool=Pool.STUDIO, mode="dialog", provider="joypix")
    job_with_money(alice, key=key, held=5, charged=5, at=months_ago(13))  # too old
    bobs, _ = api_key_create(owner=bob, name="bob-secret")
    job_with_money(bob, key=bobs, held=777, charged=777, at=two_ago)
    return {"key": key, "charged": charged, "refunded": refunded, "bobs": bobs}


def test_months_hold_charged_and_returned_by_pool_mode_provider_and_key(alice, history):
    report = member_spend_by_month(alice)
    assert len(report) == 12
    assert report[-1].day == timezone.localdate().replace(day=1)
    by_month = {m.day: m for m in report}
    two_ago = by_month[months_ago(2).date().replace(day=1)]
    assert (two_ago.total, two_ago.total_returned) == (55, 25)
    assert [
        (line.pool, line.mode, line.provider, line.key_id, line.charged, line.returned)
        for line in two_ago.lines
    ] == [("api", "talking_photo", "lipsync_studio", history["key"].pk, 55, 25)]
    this = report[-1]
    assert (this.studio, this.api, this.total_returned) == (60, 0, 0)
    assert [(line.mode, line.provider, line.key_id) for line in this.lines] == [
        ("dialog", "joypix", None)
    ]
    # Nothing of bob's, nothing older than 12 months.
    assert sum(m.total for m in report) == 115


def test_a_failed_job_counts_as_returned_in_its_month(alice):
    funded(alice)
    key, _ = api_key_create(owner=alice, name="k")
    job_with_money(alice, key=key, held=20, at=months_ago(1))  # released whole
    month = {m.day: m for m in member_spend_by_month(alice)}[months_ago(1).date().replace(day=1)]
    assert (month.total, month.total_returned) == (0, 20)


def test_the_credits_page_shows_the_report_and_its_chart(alice_client, history):
    response = alice_client.get(CREDITS)
    html = response.content.decode()
    section = html[html.index('id="spend-report"') : html.index('id="ledger"')]
    page = text(None, section)
    month = f"{months_ago(2):%B %Y}"
    assert (
        f"{month} API talking_photo lipsync_studio nightly sk_{history['key'].prefix}_… 55 25"
        in page
    )
    assert f"{month}, all 55 25" in page
    assert "bob-secret" not in html and "777" not in section
    assert '<svg class="spend-chart"' in section
    # One studio bar this month, one API bar two months ago: 12 columns.
    assert section.count('class="bar-studio"') == 1 and section.count('class="bar-api"') == 1
    assert section.count('class="column"') == 12
    assert f'href="{CSV}"' in section


def test_the_report_reads_in_one_query(alice, history, django_assert_num_queries):
    with django_assert_num_queries(1):
        member_spend_by_month(alice)


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_csv_holds_only_the_members_own_ledger(alice_client, alice, history):
    response = alice_client.get(CSV)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(response)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["entry_id", "created_at", "member"]
    assert body and {row[2] for row in body} == {"alice"}
    assert alice.credit_accounts.get(pool="api").entries.count() + alice.credit_accounts.get(
        pool="studio"
    ).entries.count() == len(body)
    jobs = {row[10] for row in body}
    bobs_entries = {str(pk) for pk in LedgerEntry.objects.filter(account__user__username="bob")
                    .values_list("pk", flat=True)}  # fmt: skip
    assert bobs_entries and not bobs_entries & {row[0] for row in body}
    assert str(history["refunded"].pk) in jobs


def test_the_csv_needs_a_signed_in_member(client):
    response = client.get(CSV)
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_csv_says_staff_not_which_staff_member(alice_client, alice, staff):
    from jobs.credits.ledger import credits_adjust

    credits_adjust(user=alice, pool="api", amount=15, key="goodwill", reason="Sorry", by=staff)
    rows = read_csv(alice_client.get(CSV))
    column = rows[0].index("created_by")
    assert [row[column] for row in rows[1:]] == ["staff"]
    assert staff.get_username() not in str(rows)
